//! The `usergraph` binary as a child process.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// `usergraph ARGS` with `DATABASE_URL` set (unless `database_url` is None).
pub fn usergraph(args: &[&str], database_url: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_usergraph"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "usergraph=info,warn");
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command
}

/// Runs a command that must succeed; returns its stdout.
pub fn run(mut command: Command) -> String {
    let output = command.output().expect("run usergraph");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The last line a command printed: where `create` commands put their result.
pub fn last_line(output: &str) -> String {
    output
        .lines()
        .last()
        .expect("a line of output")
        .trim()
        .to_owned()
}

/// One user seeded and an API token created in the database at
/// `database_url`, both with the command line: the user's id and the token.
pub fn seeded_user_and_token(database_url: &str) -> (String, String) {
    let seed = usergraph(&["seed", "--users", "1"], Some(database_url));
    let id = last_line(&run(seed));
    let token = last_line(&run(usergraph(&["token", "create"], Some(database_url))));
    (id, token)
}

/// A running `usergraph serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://ADDR/graphql`.
    pub endpoint: String,
    /// What the server printed before it started listening.
    pub banner: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `command` (a `serve` command) and waits until it listens.
    pub fn start(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start usergraph serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut banner = Vec::new();
        let endpoint = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("server exited before listening: {}", stderr.lock().unwrap());
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().expect("address").to_owned();
            }
            banner.push(line);
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            endpoint,
            banner,
            stderr,
        }
    }

    /// The first log line containing `needle`, waiting up to five seconds
    /// for the server to write it and the pipe to deliver it.
    pub fn log_line(&self, needle: &str) -> String {
        for _ in 0..100 {
            let log = self.stderr.lock().unwrap().clone();
            if let Some(line) = log.lines().find(|line| line.contains(needle)) {
                return line.to_owned();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "no log line contains {needle}: {}",
            self.stderr.lock().unwrap()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Sends SIGTERM and waits up to `bound` for the process to exit.
    pub fn terminate(&mut self, bound: std::time::Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + bound;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

/// POSTs a JSON body and returns the JSON answer.
pub async fn post_json(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: &serde_json::Value,
) -> serde_json::Value {
    let response = client.post(url).json(body).send().await.expect("an answer");
    response.json().await.expect("a JSON answer")
}
