//! `JsonObject<T>`: a JSON body that must be an object. serde's derived structs also
//! accept an array of field values, which no client means; we refuse it as bad input.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use crate::web::problem::{missing_field, Problem};

pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Parses a JSON value that must be an object into `T`, naming the field at fault.
pub fn from_object<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &str,
) -> Result<T, Problem> {
    if !value.is_object() {
        return Err(Problem::invalid_field(
            what,
            format!("{what} must be a JSON object"),
        ));
    }
    serde_json::from_value(value).map_err(|error| match missing_field(&error.to_string()) {
        Some(field) => Problem::invalid_field(&field, format!("{field} is required")),
        None => Problem::invalid_field(what, error.to_string()),
    })
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            Ok(JsonObject(from_object(value, "body")?))
        })
    }
}
