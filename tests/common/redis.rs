//! A throwaway Redis server for a test: `redis-server` on a free loopback
//! port, persistence off, in a temporary directory, killed when dropped (or
//! when the test process dies: it gets SIGKILL with it). Tests can stop and
//! restart it to check what a dead Redis does to callers.
//!
//! When the server cannot be started the test fails with the reason; it is
//! never skipped (`scripts/test` installs Debian's `redis-server`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    password: Option<String>,
    /// With TLS: the port it listens on for TLS (the plain `port` stays
    /// open for the harness's own `PING`).
    tls_port: Option<u16>,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        Self::start_with(None, false)
    }

    /// A server that also listens for TLS, with a certificate for
    /// `127.0.0.1` signed by a CA of its own ([`ca_certificate`](Self::ca_certificate)),
    /// made with the `openssl` command.
    #[allow(dead_code)]
    pub fn start_tls() -> RedisServer {
        Self::start_with(None, true)
    }

    /// The CA a TLS server's certificate is signed by (PEM).
    #[allow(dead_code)]
    pub fn ca_certificate(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.crt")).expect("the test CA")
    }

    /// A server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::start_with(Some(password.to_owned()), false)
    }

    fn start_with(password: Option<String>, tls: bool) -> RedisServer {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dbkit-redis-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create the Redis directory");
        let free_port = || {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port()
        };
        let port = free_port();
        let tls_port = tls.then(|| {
            make_certificates(&dir);
            free_port()
        });
        let mut server = RedisServer {
            port,
            dir,
            child: None,
            password,
            tls_port,
        };
        server.resume();
        server
    }

    /// `redis://127.0.0.1:PORT`, with the password if there is one.
    pub fn url(&self) -> String {
        let (scheme, port) = match self.tls_port {
            Some(port) => ("rediss", port),
            None => ("redis", self.port),
        };
        match &self.password {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{port}"),
            None => format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    /// A client of the test's own, to look at and tamper with what dbkit
    /// stored.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test's redis-server")
    }

    /// Freezes the server (SIGSTOP): it accepts connections and answers
    /// nothing, as a hung or overloaded server does.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen server run again.
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("the server is running");
        let pid = i32::try_from(child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal redis-server");
    }

    /// Kills the server, as a crash would.
    pub fn halt(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child process; a frozen one must
            // be woken to die of SIGKILL promptly on every kernel.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (with an empty data set: nothing
    /// is persisted).
    pub fn resume(&mut self) {
        self.halt();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(
                self.password
                    .iter()
                    .flat_map(|p| ["--requirepass".to_owned(), p.clone()]),
            )
            .args(self.tls_port.iter().flat_map(|port| {
                [
                    "--tls-port".to_owned(),
                    port.to_string(),
                    "--tls-cert-file".to_owned(),
                    "server.crt".to_owned(),
                    "--tls-key-file".to_owned(),
                    "server.key".to_owned(),
                    "--tls-ca-cert-file".to_owned(),
                    "ca.crt".to_owned(),
                    "--tls-auth-clients".to_owned(),
                    "no".to_owned(),
                ]
            }))
            .current_dir(&self.dir)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe. The server dies with the
        // thread that spawned it, so tests spawn from their own thread and
        // keep the server no longer than that thread lives.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start redis-server: {e}\n(scripts/test installs Debian's redis-server)")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers `PING` with `+PONG`.
    pub fn answers_ping(&self) -> bool {
        self.inline("PING").is_some_and(|reply| reply == "+PONG")
    }

    /// Sends one inline command (`SET k v`) and returns the first line of
    /// the reply, or `None` when the server cannot be reached.
    pub fn inline(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        if let Some(password) = &self.password {
            stream
                .write_all(format!("AUTH {password}\r\n").as_bytes())
                .ok()?;
            read_line(&mut stream)?;
        }
        stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        read_line(&mut stream)
    }
}

/// A CA and a server certificate for 127.0.0.1 it signed, in `dir`.
fn make_certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run openssl: {e} (scripts/test installs it)"));
        assert!(status.success(), "openssl {args:?} failed");
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write the extension file");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=dbkit test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
}

fn read_line(stream: &mut TcpStream) -> Option<String> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).ok()?;
        reply.push(byte[0]);
    }
    reply.truncate(reply.len() - 2);
    String::from_utf8(reply).ok()
}

impl RedisServer {
    /// Waits until dbkit's invalidation bus is subscribed (so L1 serves).
    #[allow(dead_code)]
    pub fn wait_for_bus(&self) {
        super::wait_until("the Redis invalidation bus is subscribed", || {
            dbkit::report().redis.is_some_and(|r| r.bus_subscribed)
        });
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.halt();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
