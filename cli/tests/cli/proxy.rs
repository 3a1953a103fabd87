//! A TCP proxy in front of the api that cuts the first log stream (`follow=true`) it carries
//! after a number of bytes, as a flaky network would, and records the requests it saw.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct CuttingProxy {
    pub url: String,
    /// The head of every request that went through, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl CuttingProxy {
    /// Proxies to `upstream` (`host:port`); the first follow stream is cut after `cut_after`
    /// bytes of its response.
    pub async fn start(upstream: String, cut_after: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            let mut cut_done = false;
            while let Ok((client, _)) = listener.accept().await {
                let upstream = TcpStream::connect(&upstream).await.unwrap();
                let mut client = client;
                let mut head = vec![0u8; 8192];
                let n = client.read(&mut head).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&head[..n]).into_owned();
                let cut = !cut_done && text.contains("follow=true");
                cut_done |= cut;
                seen.lock().unwrap().push(text);
                tokio::spawn(relay(
                    client,
                    upstream,
                    head[..n].to_vec(),
                    cut.then_some(cut_after),
                ));
            }
        });
        Self { url, requests }
    }
}

/// Forwards the request head, then both directions; with `cut`, drops both sides once that many
/// response bytes went to the client.
async fn relay(client: TcpStream, mut upstream: TcpStream, head: Vec<u8>, cut: Option<usize>) {
    if upstream.write_all(&head).await.is_err() {
        return;
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let upward = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
    });
    let mut sent = 0usize;
    let mut buffer = vec![0u8; 512];
    loop {
        let n = match upstream_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let n = match cut {
            Some(limit) => n.min(limit.saturating_sub(sent)),
            None => n,
        };
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        sent += n;
        if cut.is_some_and(|limit| sent >= limit) {
            break;
        }
    }
    upward.abort();
}
