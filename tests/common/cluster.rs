//! A PostgreSQL cluster of a test's own, which the test may stop and start:
//! the real database going away, where a [`super::proxy::Proxy`] only cuts
//! the road to it. Uses the machine's PostgreSQL server programs (Debian
//! keeps them in /usr/lib/postgresql/<version>/bin); when the tests run as
//! root, it runs them as the `postgres` user, as PostgreSQL refuses root.

use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    /// The data directory, also the directory of its Unix socket.
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// A new cluster, started; `None` when this machine has no PostgreSQL
    /// server programs.
    pub fn create() -> Option<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())?;
        let as_postgres = output(Command::new("id").arg("-u")).trim() == "0";
        let dir = tempfile::tempdir().expect("temp dir");
        if as_postgres {
            let owner = output(Command::new("id").args(["-u", "postgres"]));
            let uid: u32 = owner.trim().parse().expect("the postgres user's id");
            std::os::unix::fs::chown(dir.path(), Some(uid), None).expect("chown");
        }
        // A free port: bound by the OS, then released for PostgreSQL.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let cluster = Cluster {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `postgres://` URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        output(command.args(args));
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-w",
                "-o",
                &options,
                "-l",
                &log,
                "start",
            ],
        );
    }

    /// Stops the server as an operator's `fast` shutdown does: every
    /// session is disconnected, open transactions roll back.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-w", "-m", "fast", "stop"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args)
                .output()
        } else {
            Command::new(program).args(args).output()
        };
    }
}

/// Runs `command`; panics with its output unless it succeeds.
fn output(command: &mut Command) -> String {
    let output = command.output().expect("run a PostgreSQL program");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
