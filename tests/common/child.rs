//! Reading the stdout of a child process that a test is going to kill.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Forwards every whole line the child writes (without its line ending). A line the kill cut
/// short has no newline: it was never said, so it is dropped and reading stops.
pub fn whole_lines<R: Read + Send + 'static>(out: R) -> (mpsc::Receiver<String>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut out = BufReader::new(out);
        let mut line = Vec::new();
        loop {
            line.clear();
            match out.read_until(b'\n', &mut line) {
                Ok(_) if line.ends_with(b"\n") => {
                    if tx.send(String::from_utf8_lossy(&line).trim_end().to_string()).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    (rx, reader)
}
