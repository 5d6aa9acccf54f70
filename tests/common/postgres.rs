//! A throwaway PostgreSQL server for one test binary: a cluster in a
//! temporary directory on a free loopback port, started on first use and
//! stopped when the test process exits (or dies: the server gets SIGKILL with
//! it). PostgreSQL refuses to run as root, so as root it runs as `nobody`.
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

pub struct PgServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    child: Mutex<Option<Child>>,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();

/// The server of this test binary, started on first use.
pub fn server() -> &'static PgServer {
    SERVER.get_or_init(|| match PgServer::start() {
        Ok(server) => {
            // SAFETY: registering a plain `extern "C" fn` with atexit.
            unsafe { libc::atexit(stop_at_exit) };
            server
        }
        Err(why) => panic!("cannot start the test PostgreSQL server: {why}\n(scripts/test installs the PostgreSQL 15 server binaries; see its output)"),
    })
}

extern "C" fn stop_at_exit() {
    if let Some(server) = SERVER.get() {
        server.stop();
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL server binaries (pg_config --bindir has no initdb, /usr/lib/postgresql is missing)".to_string())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".to_string())
}

/// As root, who the server runs as: `nobody`.
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

impl PgServer {
    /// A server of the calling test's own, for tests that stop it; stopped
    /// when dropped.
    pub fn private() -> PgServer {
        PgServer::start()
            .unwrap_or_else(|why| panic!("cannot start a test PostgreSQL server: {why}"))
    }

    /// Stops the server, keeping its data, as a crash or a restart would.
    pub fn halt(&self) {
        self.kill();
    }

    /// Starts a halted server again on the same port and data.
    pub fn resume(&self) {
        let child = spawn_server(
            &self.bin.join("postgres"),
            &self.dir.join("data"),
            &self.dir,
            self.port,
        )
        .expect("restart postgres");
        *self.child.lock().unwrap() = Some(child);
        self.wait_ready(&self.dir.join("server.log"))
            .expect("postgres back up");
    }

    fn start() -> Result<PgServer, String> {
        let bin = bin_dir()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dbkit-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        if let Some((uid, gid)) = unprivileged() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let out = as_server_user(Command::new(bin.join("initdb")).arg("-D").arg(&data))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .map_err(|e| format!("run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let child = spawn_server(&bin.join("postgres"), &data, &dir, port)?;
            let server = PgServer {
                port,
                dir: dir.clone(),
                bin: bin.clone(),
                child: Mutex::new(Some(child)),
            };
            match server.wait_ready(&dir.join("server.log")) {
                Ok(()) => return Ok(server),
                Err(e) => {
                    last_error = e;
                    server.kill();
                    // Not dropped: dropping removes the data directory the
                    // next attempt starts from.
                    std::mem::forget(server);
                }
            }
        }
        Err(last_error)
    }

    fn wait_ready(&self, log: &Path) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if PgConnection::establish(&self.url("postgres")).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.lock().unwrap().as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(log).unwrap_or_default();
                    return Err(format!("postgres exited ({status}):\n{log}"));
                }
            }
            if Instant::now() > deadline {
                return Err("postgres did not accept connections within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database for one test.
    pub fn fresh_database(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}", N.fetch_add(1, Ordering::SeqCst));
        let mut admin = PgConnection::establish(&self.url("postgres")).expect("admin connection");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create database");
        self.url(&name)
    }

    /// Stops the server now (SIGQUIT: immediate shutdown) and removes its files.
    pub fn stop(&self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn kill(&self) {
        if let Ok(mut child) = self.child.lock() {
            if let Some(mut child) = child.take() {
                // SAFETY: signalling our own child process.
                unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
                let _ = child.wait();
            }
        }
    }
}

/// Starts the server from a thread that lives as long as the process, so the
/// parent-death signal fires when the test process dies, not when the test
/// thread that happened to start it ends.
fn spawn_server(postgres: &Path, data: &Path, dir: &Path, port: u16) -> Result<Child, String> {
    let (postgres, data, dir) = (postgres.to_owned(), data.to_owned(), dir.to_owned());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let log = std::fs::File::create(dir.join("server.log"));
        let mut cmd = Command::new(&postgres);
        cmd.arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&dir);
        cmd.args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
            // PREPARE TRANSACTION (two-phase commit) is refused at 0, the default.
            "-c",
            "max_prepared_transactions=10",
        ]);
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
        let _ = tx.send(cmd.spawn().map_err(|e| format!("spawn postgres: {e}")));
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .map_err(|_| "postgres spawner thread died".to_string())?
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
