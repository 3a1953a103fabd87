//! Request bodies: the media type, a size cap read off the stream, a pre-parse guard against deep
//! nesting and out-of-range integers, and JSON:API documents parsed with every error pointing at
//! the offending member (unknown attributes and repeated keys are refused, not ignored); the
//! edit a PATCH of a versioned document asks for.

mod document;
mod edit;
mod guard;
mod read;
mod unique_keys;

pub(crate) use document::pointer_token;
pub use document::{
    JsonApiBody, RequestData, RequestDocument, max_body_bytes, nullable, parse_json, parse_resource,
};
pub use edit::{Edit, EditRequest, UpdateDocumentAttributes};
pub use read::{MediaType, read_body};
pub use unique_keys::UniqueKeys;
