//! The data of each page, one type a page. Each type knows its page's name ([`Page`]), so
//! a route renders a page by handing over its data and cannot pair a name with the wrong
//! data. [`samples`] gives every page's data in each of its shapes, so that `load` checks
//! the templates against these very types.

use serde::{Serialize, Serializer};

use super::HOME;
use super::{
    CONFIRM, CONFIRMED, ERASED, ERASE_CONFIRM, ERROR, FRESH_LINK_NEEDED, LINK_INVALID, LINK_SENT,
    MANAGE, PREFERENCES, RENEW, SIGNUP_RECEIVED, UNSUBSCRIBE, UNSUBSCRIBED,
};
use crate::domain::{Purpose, Status};
use crate::service::TypeView;

/// A page's data, tied to the page's name.
pub trait Page: Serialize {
    const NAME: &'static str;
}

macro_rules! pages {
    ($($data:ty => $name:expr),+ $(,)?) => {
        $(impl Page for $data {
            const NAME: &'static str = $name;
        })+
    };
}
pub(super) use pages;

pages! {
    Confirm => CONFIRM,
    Confirmed => CONFIRMED,
    LinkInvalid => LINK_INVALID,
    Unsubscribe => UNSUBSCRIBE,
    Unsubscribed => UNSUBSCRIBED,
    Preferences<'_> => PREFERENCES,
    Manage => MANAGE,
    LinkSent => LINK_SENT,
    FreshLinkNeeded => FRESH_LINK_NEEDED,
    SignupReceived => SIGNUP_RECEIVED,
    ErrorPage => ERROR,
    EraseConfirm => ERASE_CONFIRM,
    Erased => ERASED,
    Renew => RENEW,
    Home => HOME,
}

/// A subscription type as the pages name it, in the page's locale.
#[derive(Clone, Debug, Serialize)]
pub struct TypeName {
    pub id: String,
    pub name: String,
}

/// One button that confirms. A GET of this page changes nothing; shown to the browser
/// that signed up, the page submits its form itself with the script the nonce allows.
#[derive(Clone, Debug, Serialize)]
pub struct Confirm {
    pub action_url: String,
    /// The nonce of the script that submits the form; only on a bound browser's page.
    pub auto_submit_nonce: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Confirmed {
    pub types: Vec<TypeName>,
    /// The link was used before: "already confirmed", and never a preferences link.
    pub already: bool,
    pub preferences_url: Option<String>,
    /// Set when the page follows the hosted form (a code was entered) and may be framed.
    pub embed: Option<Embed>,
}

/// What a page that may be framed needs to tell the frame's parent its height: the
/// allowed origins (space-separated) and the nonce of its script.
#[derive(Clone, Debug, Serialize)]
pub struct Embed {
    pub origins: String,
    pub nonce: String,
}

/// The form on "check your inbox" for the code from the mail.
#[derive(Clone, Debug, Serialize)]
pub struct CodeForm {
    pub action_url: String,
    /// The signed reference to what the signup request created.
    pub reference: String,
    pub locale: String,
}

/// A link that is forged or malformed, or (`expired`) too old.
#[derive(Clone, Debug, Serialize)]
pub struct LinkInvalid {
    pub expired: bool,
    pub signup_url: Option<String>,
}

/// The unsubscribe page and the page after its POST. Never a preferences link.
#[derive(Clone, Debug, Serialize)]
pub struct UnsubscribeData {
    pub action_url: String,
    pub types: Vec<TypeName>,
    pub cancel_signup: bool,
    pub stop_requests: bool,
    pub requests_blocked: bool,
    pub resubscribe_action: Option<String>,
    pub manage_action: Option<String>,
    pub already_unsubscribed: bool,
    /// A cancel link whose signup is no longer waiting (confirmed, cancelled or
    /// expired): the page says so and has no button.
    pub nothing_pending: bool,
}

/// Asks before unsubscribing.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct Unsubscribe(pub UnsubscribeData);

/// After the unsubscribe POST.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct Unsubscribed(pub UnsubscribeData);

/// The preference center.
#[derive(Clone, Debug, Serialize)]
pub struct Preferences<'a> {
    pub action_url: String,
    pub types: &'a [TypeView],
    pub saved: bool,
    /// A tick's notice was not the one shown today: nothing was saved.
    pub notice_changed: bool,
    pub restricted: bool,
    pub signups_blocked: bool,
    pub rights_allowed: bool,
    pub export_action: String,
    pub erase_url: String,
    pub fresh_link_action: String,
    /// The download of every consent receipt, when receipts are issued; no fresher link
    /// needed, as a receipt names the person only by a keyed hash.
    pub receipts_url: Option<String>,
}

/// One button that mails a preferences link. The same for every address.
#[derive(Clone, Debug, Serialize)]
pub struct Manage {
    pub action_url: String,
}

/// "If we have your address, a link is on its way".
#[derive(Clone, Debug, Serialize)]
pub struct LinkSent {}

/// Export or erasure asked with an aged preferences link.
#[derive(Clone, Debug, Serialize)]
pub struct FreshLinkNeeded {
    pub action_url: String,
}

/// The same page whatever state the address is in. After a signup through the form it
/// asks for the code from the mail.
#[derive(Clone, Debug, Serialize)]
pub struct SignupReceived {
    pub code_form: Option<CodeForm>,
    /// The string key of what was wrong with the code entered.
    pub error: Option<&'static str>,
    pub embed: Option<Embed>,
}

impl SignupReceived {
    /// The page with nothing to enter (a resubscribe, or no signup reference).
    pub fn plain() -> Self {
        Self {
            code_form: None,
            error: None,
            embed: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ErrorPage {
    pub status: u16,
    pub error_key: ErrorKey,
}

/// Asks "delete all my data?" before the self-service erasure.
#[derive(Clone, Debug, Serialize)]
pub struct EraseConfirm {
    pub action_url: String,
    pub back_url: String,
}

/// After a self-service erasure.
#[derive(Clone, Debug, Serialize)]
pub struct Erased {}

/// The renewal link's page: the question with one button (a GET changes nothing), or
/// after the click, until when the consent now lasts.
#[derive(Clone, Debug, Serialize)]
pub struct Renew {
    pub action_url: String,
    pub type_name: String,
    /// The notice the button agrees to again, and its version (posted back).
    pub notice_text: String,
    pub notice_version: String,
    /// `2026-03-01`: when the consent lapses unless renewed, or after the click, when the
    /// renewed one does.
    pub until: String,
    /// This click renewed it.
    pub renewed: bool,
    /// It was renewed before; nothing more to do.
    pub already: bool,
    /// The notice changed since the page was shown: asked again with today's text.
    pub notice_changed: bool,
}

/// `GET /`: what this is, and the way to the signup form.
#[derive(Clone, Debug, Serialize)]
pub struct Home {
    /// Relative to `/`, so that it works behind a path prefix.
    pub signup_url: String,
}

/// The messages the error page has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKey {
    BadRequest,
    NotFound,
    TooManyRequests,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl ErrorKey {
    pub const ALL: [ErrorKey; 6] = [
        ErrorKey::BadRequest,
        ErrorKey::NotFound,
        ErrorKey::TooManyRequests,
        ErrorKey::PayloadTooLarge,
        ErrorKey::Unavailable,
        ErrorKey::Internal,
    ];

    /// The key as the templates and string files know it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKey::BadRequest => "bad_request",
            ErrorKey::NotFound => "not_found",
            ErrorKey::TooManyRequests => "too_many_requests",
            ErrorKey::PayloadTooLarge => "payload_too_large",
            ErrorKey::Unavailable => "unavailable",
            ErrorKey::Internal => "internal",
        }
    }
}

impl Serialize for ErrorKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `(page name, data)` for every page, covering both sides of each page's conditions.
pub(super) fn samples() -> Vec<(&'static str, serde_json::Value)> {
    let url = || "https://example.invalid/sample".to_string();
    let types = || {
        vec![TypeName {
            id: "sample-type".to_string(),
            name: "Sample".to_string(),
        }]
    };
    let mut samples = Samples::default();
    let embed = || Embed {
        origins: "https://shop.example https://b.example".to_string(),
        nonce: "bm9uY2U=".to_string(),
    };
    for auto_submit_nonce in [Some("bm9uY2U=".to_string()), None] {
        samples.add(&Confirm {
            action_url: url(),
            auto_submit_nonce,
        });
    }
    for (already, preferences_url) in [(false, Some(url())), (false, None), (true, None)] {
        samples.add(&Confirmed {
            types: types(),
            already,
            preferences_url,
            embed: (!already).then(embed),
        });
    }
    samples.add(&LinkInvalid {
        expired: true,
        signup_url: Some(url()),
    });
    samples.add(&LinkInvalid {
        expired: false,
        signup_url: None,
    });
    for (cancel_signup, stop_requests) in [(true, false), (false, true), (false, false)] {
        let type_link = !cancel_signup && !stop_requests;
        let data = UnsubscribeData {
            action_url: url(),
            types: types(),
            cancel_signup,
            stop_requests,
            requests_blocked: cancel_signup,
            resubscribe_action: type_link.then(url),
            manage_action: (!stop_requests).then(url),
            already_unsubscribed: type_link,
            nothing_pending: false,
        };
        samples.add(&Unsubscribe(data.clone()));
        samples.add(&Unsubscribed(data));
    }
    for flag in [true, false] {
        let types = [TypeView {
            id: "sample-type".to_string(),
            name: "Sample".to_string(),
            description: if flag { "A sample." } else { "" }.to_string(),
            purpose: Purpose::Marketing,
            status: if flag {
                Status::OptedIn
            } else {
                Status::NotSubscribed
            },
            opted_in: flag,
            notice_version: "1".to_string(),
            notice_text: if flag { "A sample notice." } else { "" }.to_string(),
        }];
        samples.add(&Preferences {
            action_url: url(),
            types: &types,
            saved: flag,
            notice_changed: !flag,
            restricted: flag,
            signups_blocked: flag,
            rights_allowed: flag,
            export_action: url(),
            erase_url: url(),
            fresh_link_action: url(),
            receipts_url: flag.then(url),
        });
    }
    for (renewed, already, notice_changed) in [
        (false, false, false),
        (false, false, true),
        (true, false, false),
        (false, true, false),
    ] {
        samples.add(&Renew {
            action_url: url(),
            type_name: "Sample".to_string(),
            notice_text: "A sample notice.".to_string(),
            notice_version: "1".to_string(),
            until: "2027-01-01".to_string(),
            renewed,
            already,
            notice_changed,
        });
    }
    let nothing_pending = UnsubscribeData {
        action_url: url(),
        types: Vec::new(),
        cancel_signup: true,
        stop_requests: false,
        requests_blocked: false,
        resubscribe_action: None,
        manage_action: Some(url()),
        already_unsubscribed: false,
        nothing_pending: true,
    };
    samples.add(&Unsubscribe(nothing_pending.clone()));
    samples.add(&Unsubscribed(nothing_pending));
    samples.add(&SignupReceived::plain());
    for error in [Some("signup_code_refused"), None] {
        samples.add(&SignupReceived {
            code_form: Some(CodeForm {
                action_url: url(),
                reference: "cmVm.c2ln".to_string(),
                locale: "en".to_string(),
            }),
            error,
            embed: Some(embed()),
        });
    }
    samples.add(&SignupReceived {
        code_form: None,
        error: Some("signup_code_refused"),
        embed: None,
    });
    samples.add(&Erased {});
    samples.add(&LinkSent {});
    samples.add(&Manage { action_url: url() });
    samples.add(&FreshLinkNeeded { action_url: url() });
    samples.add(&EraseConfirm {
        action_url: url(),
        back_url: url(),
    });
    for error_key in ErrorKey::ALL {
        samples.add(&ErrorPage {
            status: 400,
            error_key,
        });
    }
    samples.add(&Home {
        signup_url: "signup".to_string(),
    });
    super::console::add_samples(&mut samples);
    samples.0
}

#[derive(Default)]
pub(super) struct Samples(Vec<(&'static str, serde_json::Value)>);

impl Samples {
    pub(super) fn add<P: Page>(&mut self, data: &P) {
        // Structs of strings, flags and lists: serializing cannot fail.
        let value = serde_json::to_value(data).unwrap_or_default();
        self.0.push((P::NAME, value));
    }
}
