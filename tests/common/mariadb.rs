//! A throwaway MariaDB server for one test binary: a data directory in a
//! temporary directory on a free loopback port, started on first use and
//! stopped when the test process exits (or dies: the server gets SIGKILL with
//! it). As root it runs as `nobody`, like the PostgreSQL one (`postgres.rs`).
//!
//! `root` may log in over TCP without a password (`mariadb-install-db
//! --auth-root-authentication-method=normal`), so the grant tables stay on.
//!
//! When the server cannot be started the tests fail with the reason; they are
//! never skipped.

#![allow(dead_code)] // each test binary and bench uses part of it

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel::prelude::*;

pub struct MariaDbServer {
    pub port: u16,
    dir: PathBuf,
    mariadbd: PathBuf,
    child: Mutex<Option<Child>>,
}

static SERVER: OnceLock<MariaDbServer> = OnceLock::new();

/// The server of this test binary, started on first use.
pub fn server() -> &'static MariaDbServer {
    SERVER.get_or_init(|| match MariaDbServer::start() {
        Ok(server) => {
            // SAFETY: registering a plain `extern "C" fn` with atexit.
            unsafe { libc::atexit(stop_at_exit) };
            server
        }
        Err(why) => panic!("cannot start the test MariaDB server: {why}\n(scripts/test installs Debian's mariadb-server; see its output)"),
    })
}

extern "C" fn stop_at_exit() {
    if let Some(server) = SERVER.get() {
        server.stop();
    }
}

/// The first of `names` on PATH, /usr/sbin or /usr/bin (the server lives in
/// sbin, which a non-root PATH often lacks).
fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let install = find_binary(&["mariadb-install-db", "mysql_install_db"])
        .ok_or("no mariadb-install-db or mysql_install_db on PATH, /usr/sbin or /usr/bin")?;
    let server = find_binary(&["mariadbd", "mysqld"])
        .ok_or("no mariadbd or mysqld on PATH, /usr/sbin or /usr/bin")?;
    Ok((install, server))
}

/// As root, who the server runs as: `nobody` (mariadbd refuses root unless
/// told `--user`, and files it makes as root would outlive a chown).
fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } == 0).then_some((65534, 65534))
}

fn as_server_user(cmd: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = unprivileged() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A Unix socket path holds at most 107 bytes: under a long TMPDIR the
/// server's directory goes in /tmp instead.
fn base_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    if tmp.as_os_str().len() > 60 {
        PathBuf::from("/tmp")
    } else {
        tmp
    }
}

/// What makes a server start in a fraction of a second and commit without
/// waiting for the disk: the data is thrown away anyway. Given to both the
/// bootstrap and the server.
const FAST: &[&str] = &[
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    // No fsync; 2, not 0: a commit still reaches the OS, so `halt` (SIGKILL)
    // keeps what was committed, as a crash of the server alone would.
    "--innodb-flush-log-at-trx-commit=2",
    "--innodb-doublewrite=0",
    // Aria (the system tables) and the rest stop calling fsync/fdatasync.
    "--debug-no-sync",
    // io_uring / libaio may be refused inside containers.
    "--innodb-use-native-aio=0",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
];

impl MariaDbServer {
    /// A server of the calling test's own, for tests that stop it; stopped
    /// when dropped.
    pub fn private() -> MariaDbServer {
        MariaDbServer::start()
            .unwrap_or_else(|why| panic!("cannot start a test MariaDB server: {why}"))
    }

    /// Stops the server (SIGKILL), keeping its data, as a crash would.
    pub fn halt(&self) {
        self.kill();
    }

    /// Starts a halted server again on the same port and data (InnoDB
    /// recovers from its log).
    pub fn resume(&self) {
        let child = spawn_server(&self.mariadbd, &self.dir, self.port).expect("restart mariadbd");
        *self.child.lock().unwrap() = Some(child);
        self.wait_ready().expect("mariadbd back up");
    }

    fn start() -> Result<MariaDbServer, String> {
        let (install_db, mariadbd) = binaries()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = base_dir().join(format!(
            "dbkit-maria-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        if let Some((uid, gid)) = unprivileged() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        // Dropping it on any error below removes the directory.
        let mut server = MariaDbServer {
            port: 0,
            dir: dir.clone(),
            mariadbd,
            child: Mutex::new(None),
        };
        let out = as_server_user(&mut Command::new(&install_db))
            // `--no-defaults` must come first; /etc/mysql is not read.
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--tmpdir={}", dir.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args(FAST)
            // The script runs as `nobody`, who may not read the cwd.
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("run {}: {e}", install_db.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}):\n{}{}",
                install_db.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut last_error = String::new();
        for _ in 0..3 {
            server.port = free_port()?;
            *server.child.get_mut().unwrap() =
                Some(spawn_server(&server.mariadbd, &dir, server.port)?);
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    // Another port, the same data.
                    last_error = e;
                    server.kill();
                }
            }
        }
        Err(last_error)
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if MysqlConnection::establish(&self.url("mysql")).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.lock().unwrap().as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("mariadbd exited ({status}):\n{}", self.log()));
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "mariadbd did not accept connections within 30 s:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log so far (its stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database for one test.
    pub fn fresh_database(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}", N.fetch_add(1, Ordering::SeqCst));
        let mut admin = MysqlConnection::establish(&self.url("mysql"))
            .unwrap_or_else(|e| panic!("admin connection: {e}\n{}", self.log()));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("create database: {e}\n{}", self.log()));
        self.url(&name)
    }

    /// Stops the server now (SIGKILL: the data is thrown away) and removes
    /// its files.
    pub fn stop(&self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn kill(&self) {
        if let Ok(mut child) = self.child.lock() {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Starts the server from a thread that lives as long as the process, so the
/// parent-death signal fires when the test process dies, not when the test
/// thread that happened to start it ends.
fn spawn_server(mariadbd: &Path, dir: &Path, port: u16) -> Result<Child, String> {
    let (mariadbd, dir) = (mariadbd.to_owned(), dir.to_owned());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let log = std::fs::File::create(dir.join("server.log"));
        let mut cmd = Command::new(&mariadbd);
        // `--no-defaults` must come first; without `--log-error` the log
        // goes to stderr, into server.log.
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--tmpdir={}", dir.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--sync-binlog=0",
                "--max-connections=200",
            ])
            .args(FAST)
            .current_dir(&dir);
        as_server_user(&mut cmd);
        match log {
            Ok(log) => {
                let err = log
                    .try_clone()
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null());
                cmd.stdout(Stdio::from(log)).stderr(err);
            }
            Err(_) => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        // SAFETY: prctl is async-signal-safe; it runs after the uid change, so
        // the setting survives it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let _ = tx.send(cmd.spawn().map_err(|e| format!("spawn mariadbd: {e}")));
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .map_err(|_| "mariadbd spawner thread died".to_string())?
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        self.stop();
    }
}
