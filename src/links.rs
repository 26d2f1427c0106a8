//! Signed links for emails: an HMAC-SHA256 over the action and the subscriber's token. A link
//! cannot be guessed, cannot be made from a token seen elsewhere (the mailto unsubscribe
//! subject carries the bare token), and an unsubscribe link cannot confirm, nor the reverse.
//! Pure: the key is handed in; the store keeps it.

use ring::hmac;

/// What a link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Unsubscribe,
    Confirm,
    /// The manage page: change what one follows, or leave.
    Manage,
    /// A web form's anti-forgery field, signed over its cookie (no page has this path).
    Form,
}

impl Action {
    /// Its name, which is also its path on the web surface: `/unsubscribe`, `/confirm`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Unsubscribe => "unsubscribe",
            Action::Confirm => "confirm",
            Action::Manage => "manage",
            Action::Form => "form",
        }
    }

    /// The action served at `path`, if any.
    pub fn from_path(path: &str) -> Option<Action> {
        [Action::Unsubscribe, Action::Confirm, Action::Manage]
            .into_iter()
            .find(|a| path.strip_prefix('/') == Some(a.name()))
    }
}

/// What is signed: the action and the token, on separate lines.
fn signed_text(action: Action, token: &str) -> String {
    format!("{}\n{token}", action.name())
}

#[derive(Clone)]
pub struct LinkSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

impl LinkSigner {
    /// A signer with `secret` (32 random bytes, kept by the store) as its key.
    pub fn new(secret: &[u8]) -> LinkSigner {
        LinkSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The value of a link's `t` parameter: `TOKEN.SIGNATURE`, both lower-case hex.
    pub fn sign(&self, action: Action, token: &str) -> String {
        let tag = hmac::sign(&self.key, signed_text(action, token).as_bytes());
        let mut out = String::with_capacity(token.len() + 65);
        out.push_str(token);
        out.push('.');
        for b in tag.as_ref() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// The token of a link signed for `action` with this key; `None` for anything else.
    /// The comparison takes the same time wherever the signature differs.
    pub fn verify<'a>(&self, action: Action, signed: &'a str) -> Option<&'a str> {
        let (token, sig) = signed.split_once('.')?;
        if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&sig[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .ok()?;
        hmac::verify(&self.key, signed_text(action, token).as_bytes(), &bytes)
            .ok()
            .map(|()| token)
    }
}

/// A process's copy of the current signer, shared by its tasks and replaced whenever the key
/// is read again from the database (every pass and every outbox flush), so a key rotated by
/// another process is honoured.
#[derive(Clone, Debug)]
pub struct SharedSigner(std::sync::Arc<std::sync::RwLock<LinkSigner>>);

impl SharedSigner {
    pub fn new(signer: LinkSigner) -> SharedSigner {
        SharedSigner(std::sync::Arc::new(std::sync::RwLock::new(signer)))
    }

    pub fn get(&self) -> LinkSigner {
        match self.0.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, signer: LinkSigner) {
        match self.0.write() {
            Ok(mut s) => *s = signer,
            Err(poisoned) => *poisoned.into_inner() = signer,
        }
    }
}

/// `text` with every signed `{base}/{action}?t=TOKEN.SIGNATURE` link signed again with
/// `signer`, for the tokens `resign` accepts: a message queued before a key rotation is sent
/// with links that work.
pub fn resign(
    text: &str,
    base: &str,
    signer: &LinkSigner,
    resign: impl Fn(Action, &str) -> bool,
) -> String {
    if base.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while let Some(at) = rest.find(base) {
        out.push_str(&rest[..at]);
        let after = &rest[at + base.len()..];
        for action in [Action::Unsubscribe, Action::Confirm, Action::Manage] {
            let prefix = format!("/{}?t=", action.name());
            let Some(link) = after.strip_prefix(&prefix) else {
                continue;
            };
            let token_len = link.bytes().take_while(u8::is_ascii_hexdigit).count();
            let token = &link[..token_len];
            let sig = &link[token_len..];
            let sig_ok = sig.starts_with('.')
                && sig.len() > 64
                && sig.as_bytes()[1..65].iter().all(u8::is_ascii_hexdigit);
            if token_len > 0 && sig_ok && resign(action, token) {
                out.push_str(base);
                out.push_str(&prefix);
                out.push_str(&signer.sign(action, token));
                rest = &sig[65..];
                continue 'outer;
            }
        }
        out.push_str(base);
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_queued_before_a_rotation_are_signed_again_and_nothing_else_changes() {
        let (old, new) = (LinkSigner::new(&[1; 32]), LinkSigner::new(&[2; 32]));
        let base = "https://pq.example";
        let body = format!(
            "Stop: {base}/unsubscribe?t={}\nOther: {base}/unsubscribe?t={}\n{base}/about",
            old.sign(Action::Unsubscribe, TOKEN),
            old.sign(Action::Unsubscribe, "abcd"),
        );
        let out = resign(&body, base, &new, |a, t| {
            a == Action::Unsubscribe && t == TOKEN
        });
        assert!(out.contains(&new.sign(Action::Unsubscribe, TOKEN)), "{out}");
        assert!(
            out.contains(&old.sign(Action::Unsubscribe, "abcd")),
            "{out}"
        );
        assert!(out.ends_with(&format!("{base}/about")));
        assert_eq!(resign(&body, "", &new, |_, _| true), body);
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_link_verifies_for_its_own_action_and_key_only() {
        let signer = LinkSigner::new(&[7; 32]);
        let link = signer.sign(Action::Unsubscribe, TOKEN);
        assert_eq!(signer.verify(Action::Unsubscribe, &link), Some(TOKEN));
        assert_eq!(signer.verify(Action::Confirm, &link), None);
        assert_eq!(
            LinkSigner::new(&[8; 32]).verify(Action::Unsubscribe, &link),
            None
        );
    }

    #[test]
    fn a_bare_token_a_changed_token_or_a_mangled_signature_is_refused() {
        let signer = LinkSigner::new(&[7; 32]);
        let link = signer.sign(Action::Confirm, TOKEN);
        assert_eq!(signer.verify(Action::Confirm, TOKEN), None);
        let other = link.replacen('0', "1", 1);
        assert_eq!(signer.verify(Action::Confirm, &other), None);
        let short = &link[..link.len() - 2];
        assert_eq!(signer.verify(Action::Confirm, short), None);
        let not_hex = format!("{}zz", &link[..link.len() - 2]);
        assert_eq!(signer.verify(Action::Confirm, &not_hex), None);
        assert_eq!(signer.verify(Action::Confirm, ""), None);
        assert_eq!(signer.verify(Action::Confirm, "é.é"), None);
    }

    #[test]
    fn an_action_is_found_by_its_path_and_nothing_else_is() {
        assert_eq!(Action::from_path("/unsubscribe"), Some(Action::Unsubscribe));
        assert_eq!(Action::from_path("/confirm"), Some(Action::Confirm));
        assert_eq!(Action::from_path("confirm"), None);
        assert_eq!(Action::from_path("/confirm/x"), None);
    }

    #[test]
    fn the_same_key_and_token_always_give_the_same_link() {
        let a = LinkSigner::new(b"key").sign(Action::Unsubscribe, TOKEN);
        let b = LinkSigner::new(b"key").sign(Action::Unsubscribe, TOKEN);
        assert_eq!(a, b);
        assert_eq!(a.len(), 32 + 1 + 64);
    }
}
