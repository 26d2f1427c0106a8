//! A real HTTP/1.1 server on 127.0.0.1 that answers like the Parliament API, from records the
//! test gives it, with faults the test scripts (429, 5xx, a stall past the client's timeout, a
//! malformed body). It pages, filters by the contract's date parameters, and shortens list
//! `answerText` the way the real list endpoint does.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// What to do instead of answering, once, for the next request whose path contains a string.
#[derive(Clone, Debug)]
pub enum Fault {
    Status(u16),
    TooManyRequests {
        retry_after_secs: u64,
    },
    /// Wait this long before answering normally (longer than the client's timeout = a timeout).
    Stall(Duration),
    /// A 200 whose body is not JSON.
    Garbage,
    /// A 200 with no Content-Length whose JSON body never ends: it streams until the client
    /// hangs up (the bytes written are counted in `State::endless_bytes`).
    Endless,
}

#[derive(Default)]
pub struct State {
    pub questions: Vec<Value>,
    pub statements: Vec<Value>,
    faults: VecDeque<(String, Fault)>,
    /// Faults that apply to every matching request, for as long as they are set.
    pub sticky: Vec<(String, Fault)>,
    /// Every request's path and query, in order.
    pub requests: Vec<String>,
    /// Wait this long before every detail response (to make a backfill slow enough to kill).
    pub detail_delay: Duration,
    /// Bytes written of `Fault::Endless` bodies before their clients hung up.
    pub endless_bytes: u64,
    /// Where each question id was last found in `questions`; checked on every use and rebuilt
    /// on a miss, so tests may push or edit questions directly.
    question_at: std::collections::HashMap<i64, usize>,
}

impl State {
    /// The question with this id: an indexed look-up (a year of traffic is 60,000 records).
    fn question(&mut self, id: i64) -> Option<Value> {
        let hit = |st: &State| {
            st.question_at
                .get(&id)
                .and_then(|&i| st.questions.get(i))
                .filter(|q| q["id"].as_i64() == Some(id))
                .cloned()
        };
        if let Some(q) = hit(self) {
            return Some(q);
        }
        self.question_at = self
            .questions
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q["id"].as_i64().map(|id| (id, i)))
            .collect();
        hit(self)
    }
}

pub struct FakeApi {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, state));
            }
        });
        FakeApi { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_questions(&self, qs: Vec<Value>) {
        self.state.lock().unwrap().questions = qs;
    }

    pub fn fail_next(&self, path_contains: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push_back((path_contains.to_owned(), fault));
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    /// Replaces one question (matched on id) with the result of `f`.
    pub fn update_question(&self, id: i64, f: impl FnOnce(&mut Value)) {
        let mut st = self.state.lock().unwrap();
        let q = st
            .questions
            .iter_mut()
            .find(|q| q["id"] == id)
            .expect("no such question");
        f(q);
    }
}

fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    // One write per response and no Nagle delay: otherwise every keep-alive request waits ~40 ms
    // for a delayed ACK, and benchmarks measure the server instead of pqwatch.
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        if content_length > 0 {
            let mut body = vec![0; content_length];
            let _ = reader.read_exact(&mut body);
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let (status, headers, body) = respond(&target, &state);
        if status == ENDLESS {
            stream_endless(&mut writer, &state);
            return;
        }
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            _ => "Status",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut response = head.into_bytes();
        response.extend_from_slice(&body);
        if writer.write_all(&response).is_err() {
            return;
        }
    }
}

fn respond(target: &str, state: &Mutex<State>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (fault, detail_delay) = {
        let mut st = state.lock().unwrap();
        st.requests.push(target.to_owned());
        let pos = st
            .faults
            .iter()
            .position(|(p, _)| target.contains(p.as_str()));
        let fault = pos
            .and_then(|i| st.faults.remove(i))
            .map(|(_, f)| f)
            .or_else(|| {
                st.sticky
                    .iter()
                    .find(|(p, _)| target.contains(p.as_str()))
                    .map(|(_, f)| f.clone())
            });
        (fault, st.detail_delay)
    };
    match fault {
        Some(Fault::Status(s)) => {
            let body = json!({"type": "about:blank", "title": "error", "status": s});
            return (s, vec![], body.to_string().into_bytes());
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            return (
                429,
                vec![("Retry-After".into(), retry_after_secs.to_string())],
                b"{}".to_vec(),
            );
        }
        Some(Fault::Garbage) => return (200, vec![], b"{\"totalResults\": 3, \"resu".to_vec()),
        Some(Fault::Endless) => return (ENDLESS, vec![], vec![]),
        Some(Fault::Stall(d)) => std::thread::sleep(d),
        None => {}
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.replace("%20", " "))
        })
        .collect();
    let mut st = state.lock().unwrap();
    let (items, kind_path) = if path.starts_with("/api/writtenquestions/questions") {
        (&st.questions, "/api/writtenquestions/questions")
    } else if path.starts_with("/api/writtenstatements/statements") {
        (&st.statements, "/api/writtenstatements/statements")
    } else {
        return not_found();
    };
    let rest = path[kind_path.len()..].trim_matches('/');
    if !rest.is_empty() {
        let id: i64 = rest.parse().unwrap_or(-1);
        let found = if kind_path == "/api/writtenquestions/questions" {
            st.question(id)
        } else {
            items.iter().find(|q| q["id"].as_i64() == Some(id)).cloned()
        };
        drop(st);
        if !detail_delay.is_zero() {
            std::thread::sleep(detail_delay);
        }
        return match found {
            Some(v) => (
                200,
                vec![],
                json!({"value": v, "links": [{"rel": "self", "href": format!("/Questions/{id}"), "method": "GET"}]})
                    .to_string()
                    .into_bytes(),
            ),
            None => not_found(),
        };
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let in_window = |v: &Value, key: &str, from: Option<&str>, to: Option<&str>| -> bool {
        let Some(day) = v[key].as_str().map(|s| &s[..10.min(s.len())]) else {
            return false;
        };
        from.is_none_or(|f| day >= f) && to.is_none_or(|t| day <= t)
    };
    let bodies: Vec<i64> = params
        .iter()
        .filter(|(k, _)| k == "answeringBodies")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    // The query's parameters, read once (not once per record: a year of records is 60,000).
    let window = if let Some(f) = get("correctedWhenFrom") {
        Some(("dateAnswerCorrected", Some(f), get("correctedWhenTo")))
    } else if get("answeredWhenFrom").is_some() {
        Some((
            "dateAnswered",
            get("answeredWhenFrom"),
            get("answeredWhenTo"),
        ))
    } else if get("madeWhenFrom").is_some() {
        Some(("dateMade", get("madeWhenFrom"), get("madeWhenTo")))
    } else {
        None
    };
    let house = get("house");
    let mut matching: Vec<&Value> = items
        .iter()
        .filter(|v| {
            let dates_ok = window.is_none_or(|(key, from, to)| in_window(v, key, from, to));
            let body_ok = bodies.is_empty()
                || v["answeringBodyId"]
                    .as_i64()
                    .is_some_and(|b| bodies.contains(&b));
            let house_ok = house.is_none_or(|h| v["house"].as_str() == Some(h));
            dates_ok && body_ok && house_ok
        })
        .collect();
    matching.sort_by_key(|v| v["id"].as_i64().unwrap_or(i64::MAX));
    let skip: usize = get("skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    let take: usize = get("take").and_then(|s| s.parse().ok()).unwrap_or(20);
    let results: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(take)
        .map(|v| json!({"value": shorten(v), "links": []}))
        .collect();
    let body = json!({"totalResults": matching.len(), "results": results});
    (200, vec![], body.to_string().into_bytes())
}

/// The status `respond` gives for [`Fault::Endless`]: `serve` streams the body itself.
const ENDLESS: u16 = 0;

/// A 200 without Content-Length (the end is the connection's close) whose body never ends,
/// written 64 KB at a time until the client hangs up.
fn stream_endless(writer: &mut TcpStream, state: &Mutex<State>) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
    if writer.write_all(head.as_bytes()).is_err() {
        return;
    }
    let _ = writer.write_all(b"{\"value\": {\"id\": 1, \"answerText\": \"");
    let chunk = vec![b'9'; 64 * 1024];
    loop {
        if writer.write_all(&chunk).is_err() {
            return;
        }
        state.lock().unwrap().endless_bytes += chunk.len() as u64;
    }
}

fn not_found() -> (u16, Vec<(String, String)>, Vec<u8>) {
    let body = json!({"type": "https://tools.ietf.org/html/rfc7231#section-6.5.4",
        "title": "Not Found", "status": 404});
    (404, vec![], body.to_string().into_bytes())
}

/// What the list endpoint does to `answerText`: tags stripped, cut at about 250 characters.
pub fn shorten(v: &Value) -> Value {
    let mut v = v.clone();
    for key in ["answerText", "text"] {
        if let Some(html) = v[key].as_str() {
            let mut text = String::new();
            let mut in_tag = false;
            for c in html.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            if text.chars().count() > 250 {
                text = text.chars().take(250).collect::<String>() + "...";
            }
            v[key] = Value::String(text);
        }
    }
    v
}
