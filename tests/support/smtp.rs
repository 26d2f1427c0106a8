//! A real SMTP server process (aiosmtpd, tests/support/smtp_sink.py) on 127.0.0.1 for the
//! end-to-end tests: started and stopped by the test, messages read back from its folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
}

/// One received message: the bytes, and the decoded plain and HTML parts.
pub struct Received {
    pub raw: String,
    pub text: String,
    pub html: String,
    /// The client's address and port: messages sent over one connection share it.
    pub peer: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or("");
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut lines = head.split("\r\n").peekable();
        while let Some(l) = lines.next() {
            if l.to_ascii_lowercase().starts_with(&prefix) {
                let mut v = l[prefix.len()..].trim().to_owned();
                while lines.peek().is_some_and(|n| n.starts_with([' ', '\t'])) {
                    v.push(' ');
                    v.push_str(lines.next().unwrap().trim());
                }
                return Some(v);
            }
        }
        None
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpSink {
    pub fn new(dir: &Path, args: &[&str]) -> SmtpSink {
        SmtpSink {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn start(dir: &Path, args: &[&str]) -> SmtpSink {
        let mut s = SmtpSink::new(dir, args);
        s.resume();
        s
    }

    /// Starts (or restarts) the server on its port.
    pub fn resume(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP sink did not start: is aiosmtpd installed? (bash scripts/test installs it)"
        );
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("smtp+plain://127.0.0.1:{}", self.port)
    }

    /// The Message-ID of every message received, sorted, repeats kept.
    pub fn message_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .received()
            .iter()
            .map(|m| {
                m.header("Message-ID")
                    .expect("every message has a Message-ID")
            })
            .collect();
        ids.sort();
        ids
    }

    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|x| x == "eml"));
        names.sort();
        names
            .iter()
            .map(|p| {
                let read =
                    |ext: &str| std::fs::read_to_string(p.with_extension(ext)).unwrap_or_default();
                Received {
                    raw: read("eml"),
                    text: read("txt").replace("\r\n", "\n"),
                    html: read("html").replace("\r\n", "\n"),
                    peer: read("peer"),
                }
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
