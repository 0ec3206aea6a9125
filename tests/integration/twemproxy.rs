//! Scaling out behind twemproxy: the example `docs/deploy/nutcracker.yml`
//! (addresses rewritten to free ports) shards keys over two kvservers, and a
//! client of the proxy reads back everything it wrote. Skipped with a
//! message when `nutcracker` is not installed (`.ci/run` installs it).

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{eventually, Raw, Server};

fn nutcracker() -> Option<PathBuf> {
    [
        "/usr/sbin/nutcracker",
        "/usr/bin/nutcracker",
        "/usr/local/bin/nutcracker",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_example_twemproxy_config_shards_keys_over_two_kvservers() {
    let Some(bin) = nutcracker() else {
        eprintln!("nutcracker not installed: skipping (apt-get install nutcracker)");
        return;
    };
    let (kv1, kv2) = (Server::start(), Server::start());
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy/nutcracker.yml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (listen, stats) = (free_port(), free_port());
    let config = example
        .replace("127.0.0.1:22121", &format!("127.0.0.1:{listen}"))
        .replace("127.0.0.1:6380:1", &format!("127.0.0.1:{}:1", kv1.port))
        .replace("127.0.0.1:6381:1", &format!("127.0.0.1:{}:1", kv2.port));
    assert_ne!(
        config, example,
        "the example's addresses changed: update this test"
    );
    let path = dir.path().join("nutcracker.yml");
    std::fs::write(&path, config).unwrap();
    let _proxy = Proxy(
        Command::new(bin)
            .arg("-c")
            .arg(&path)
            .args(["-s", &stats.to_string(), "-a", "127.0.0.1", "-o"])
            .arg(dir.path().join("nutcracker.log"))
            .arg("-p")
            .arg(dir.path().join("nutcracker.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        eventually(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            listen
        ))
        .is_ok()),
        "nutcracker did not listen; log:\n{}",
        std::fs::read_to_string(dir.path().join("nutcracker.log")).unwrap_or_default()
    );
    let mut client = Raw::connect(listen);
    for i in 0..200 {
        assert_eq!(
            client.cmd(&["SET", &format!("key:{i}"), &format!("v{i}")]),
            b"+OK\r\n"
        );
    }
    for i in 0..200 {
        let want = format!("v{i}");
        assert_eq!(
            client.cmd(&["GET", &format!("key:{i}")]),
            format!("${}\r\n{want}\r\n", want.len()).as_bytes()
        );
    }
    // MGET across nodes is split and reassembled by the proxy.
    let reply = client.cmd(&["MGET", "key:1", "key:2", "key:3"]);
    assert_eq!(reply, b"*3\r\n$2\r\nv1\r\n$2\r\nv2\r\n$2\r\nv3\r\n");
    let size = |server: &Server| {
        let reply = String::from_utf8(server.raw().cmd(&["DBSIZE"])).unwrap();
        reply.trim().trim_start_matches(':').parse::<u64>().unwrap()
    };
    let (n1, n2) = (size(&kv1), size(&kv2));
    assert_eq!(n1 + n2, 200);
    assert!(n1 > 0 && n2 > 0, "keys were not spread: {n1} / {n2}");
}
