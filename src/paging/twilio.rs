//! Voice calls through a Twilio-compatible API: the call is created with its TwiML inline
//! (`POST /2010-04-01/Accounts/SID/Calls.json`, form-encoded, basic auth), the alarm spoken
//! slowly inside a `<Gather>` that asks for one key; the keypress comes back to this
//! service (`POST PUBLIC_URL/voice/twilio/PAGE/PERSON`), signed by the provider with the
//! account's auth token (`X-Twilio-Signature`: HMAC-SHA1 over the URL and the sorted
//! parameters), and is believed only when that signature holds. 1 acknowledges, 2 wakes the
//! next person now. No official Rust client exists for this API; this is its one call.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use ring::hmac;

use crate::domain::page::{Channel, PageId};
use crate::escape::html;
use crate::ports::PortError;
use crate::ports::pages::{OutMessage, Transport};

/// The account and where its API is.
#[derive(Clone)]
pub struct TwilioAccount {
    pub sid: String,
    /// The account's auth token: signs the callbacks, authenticates the calls. Never logged.
    pub token: String,
    /// The number calls come from (E.164).
    pub from: String,
    /// `https://api.twilio.com`, or a compatible provider.
    pub api: String,
    /// `PUBLIC_URL`: where the keypress comes back.
    pub public_url: String,
}

impl std::fmt::Debug for TwilioAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioAccount")
            .field("sid", &self.sid)
            .field("from", &self.from)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// The callback path of a call: the page and the person called.
pub fn callback_path(page: PageId, person: &str) -> String {
    format!("/voice/twilio/{page}/{person}")
}

/// What a call says: the message slowly, then the question, asked twice.
pub fn twiml(account: &TwilioAccount, m: &OutMessage) -> String {
    let action = format!(
        "{}{}",
        account.public_url.trim_end_matches('/'),
        callback_path(m.page, &m.person)
    );
    let text = html(&m.text);
    let ask = "Press 1 if you have it. Press 2 to wake the next person now.";
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>\
         <Gather numDigits=\"1\" timeout=\"10\" method=\"POST\" action=\"{}\">\
         <Say voice=\"Polly.Joanna\"><prosody rate=\"slow\">{text}</prosody></Say>\
         <Say voice=\"Polly.Joanna\">{ask}</Say><Pause length=\"2\"/>\
         <Say voice=\"Polly.Joanna\"><prosody rate=\"slow\">{text}</prosody></Say>\
         <Say voice=\"Polly.Joanna\">{ask}</Say></Gather>\
         <Say voice=\"Polly.Joanna\">No key was pressed. You may be called again.</Say></Response>",
        html(&action)
    )
}

/// What the provider signs: the URL, then each parameter's name and value, sorted.
fn signed_data(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    data
}

fn key(token: &str) -> hmac::Key {
    // SHA-1 because the provider signs with it; it authenticates (HMAC), it hides nothing.
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes())
}

/// The signature the provider sends with a callback to `url` with these form parameters.
pub fn signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let tag = hmac::sign(&key(token), signed_data(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether a callback's signature is the account's, compared in constant time.
pub fn verifies(token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else {
        return false;
    };
    hmac::verify(&key(token), signed_data(url, params).as_bytes(), &tag).is_ok()
}

/// Places the calls.
pub struct TwilioVoice {
    account: TwilioAccount,
    client: reqwest::Client,
}

impl TwilioVoice {
    pub fn new(account: TwilioAccount) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { account, client })
    }

    pub fn account(&self) -> &TwilioAccount {
        &self.account
    }
}

#[async_trait]
impl Transport for TwilioVoice {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        debug_assert_eq!(m.channel, Channel::Voice);
        let a = &self.account;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            a.api.trim_end_matches('/'),
            a.sid
        );
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("To", &m.to)
            .append_pair("From", &a.from)
            .append_pair("Twiml", &twiml(a, m))
            .finish();
        let resp = self
            .client
            .post(&url)
            .basic_auth(&a.sid, Some(&a.token))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await
            .map_err(|e| PortError::caused(format!("voice call request failed: {e}"), e))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => {
                // The provider's own words (its error code and message), bounded.
                let said: String = resp
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                Err(format!(
                    "voice provider answered HTTP {}: {}",
                    s.as_u16(),
                    crate::escape::printable(&said)
                )
                .into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's documented example: the URL, the parameters and the signature it gives.
    #[test]
    fn the_signature_is_twilios() {
        let token = "12345";
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = signature(token, url, &params);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verifies(token, url, &params, &sig));
        assert!(!verifies("54321", url, &params, &sig), "another token");
        assert!(
            !verifies(token, "https://mycompany.com/other", &params, &sig),
            "another URL"
        );
        let mut changed = params.clone();
        changed[2].1 = "2".into();
        assert!(!verifies(token, url, &changed, &sig), "another key pressed");
        assert!(!verifies(token, url, &params, "not base64!"));
    }

    #[test]
    fn the_call_speaks_escaped_text_and_asks_for_a_key() {
        let account = TwilioAccount {
            sid: "AC1".into(),
            token: "t".into(),
            from: "+15555550000".into(),
            api: "https://api.twilio.com".into(),
            public_url: "https://pager.example.com/".into(),
        };
        let m = OutMessage {
            id: 1,
            page: PageId(7),
            key: "k".into(),
            person: "bob".into(),
            channel: Channel::Voice,
            to: "+15555550101".into(),
            text: "db <&> is down".into(),
            attempts: 0,
        };
        let t = twiml(&account, &m);
        assert!(
            t.contains("action=\"https://pager.example.com/voice/twilio/7/bob\""),
            "{t}"
        );
        assert!(
            t.contains("<prosody rate=\"slow\">db &lt;&amp;&gt; is down</prosody>"),
            "{t}"
        );
        assert!(t.contains("<Gather numDigits=\"1\""), "{t}");
        assert!(t.contains("Press 1 if you have it. Press 2 to wake the next person now."));
    }
}
