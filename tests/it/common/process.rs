//! The real binary as a child process: `serve` on port 0, with the address read from its
//! JSON log, stopped by SIGTERM (or killed when dropped).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cw-support-api");

pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) addr: String,
    /// Every line the server logged (standard error), for tests of what it says.
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `serve` with these environment variables added.
    pub(crate) fn start(envs: &[(&str, &str)]) -> Self {
        Self::start_command("serve", envs)
    }

    /// Starts `serve` or `consume` (both listen, `consume` for `/healthz` only).
    pub(crate) fn start_command(subcommand: &str, envs: &[(&str, &str)]) -> Self {
        Self::start_args(&[subcommand], envs)
    }

    /// Starts the binary with these arguments (a listening subcommand first).
    pub(crate) fn start_args(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let addr = loop {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => panic!("server exited before listening: {:?}", child.wait()),
            };
            log.lock().expect("lock").push(line.clone());
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if let Some(addr) = v["addr"].as_str() {
                break addr.to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().expect("lock").push(line);
            }
        });
        Self { child, addr, log }
    }

    /// What the server has logged so far, one line per entry.
    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("lock").join("\n")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits (at most `timeout`) until a logged line contains `needle`.
    pub(crate) fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the process never logged {needle:?}; it logged:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM without waiting for the process to stop.
    pub(crate) fn signal_term(&self) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
    }

    /// Sends SIGTERM and waits (10 s at most) for the exit status.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        self.signal_term();
        self.wait_exit()
    }

    /// Waits (10 s at most) for the exit status.
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
