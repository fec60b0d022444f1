//! Request headers (v0, v1, v2) and response headers (v0, v1), and whole
//! request/response frames built from a header and a body.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::frame::{begin_frame, end_frame, end_frame_with};
use super::wire;
use crate::messages::{ApiKey, RequestBody, ResponseBody};

/// The header every request starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The api key (kept raw: unknown keys must still be answerable).
    pub api_key: i16,
    /// The api version the body is encoded in.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The client's id (header v1+; never compact, even in header v2).
    pub client_id: Option<String>,
}

/// The request header version for an api and version: 2 when the request is
/// flexible, else 1.
pub fn request_header_version(key: ApiKey, version: i16) -> i16 {
    match key.request_flexible_from() {
        Some(f) if version >= f => 2,
        _ => 1,
    }
}

/// The response header version: 1 when the response is flexible, else 0 —
/// except ApiVersions, whose responses always use v0 so that a client can read
/// them before it knows what the broker supports.
pub fn response_header_version(key: ApiKey, version: i16) -> i16 {
    if key == ApiKey::ApiVersions {
        return 0;
    }
    match key.response_flexible_from() {
        Some(f) if version >= f => 1,
        _ => 0,
    }
}

impl RequestHeader {
    /// Reads a request header of version `hv` (0, 1 or 2).
    pub fn decode(r: &mut Bytes, hv: i16) -> Result<Self, DecodeError> {
        let at = |f| move |e: DecodeError| e.at(f);
        let api_key = wire::i16(r).map_err(at("api_key"))?;
        let api_version = wire::i16(r).map_err(at("api_version"))?;
        let correlation_id = wire::i32(r).map_err(at("correlation_id"))?;
        let client_id = if hv >= 1 { wire::nullable_string(r, false).map_err(at("client_id"))? } else { None };
        if hv >= 2 {
            skip_tagged_fields(r).map_err(at("_tagged_fields"))?;
        }
        Ok(RequestHeader { api_key, api_version, correlation_id, client_id })
    }

    /// Writes this header as version `hv`.
    pub fn encode(&self, w: &mut BytesMut, hv: i16) -> Result<(), EncodeError> {
        w.put_i16(self.api_key);
        w.put_i16(self.api_version);
        w.put_i32(self.correlation_id);
        if hv >= 1 {
            wire::put_nullable_string(w, self.client_id.as_deref(), false).map_err(|e| e.at("client_id"))?;
        }
        if hv >= 2 {
            wire::put_uvarint(w, 0);
        }
        Ok(())
    }
}

/// The header every response starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The request's correlation id.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// Reads a response header of version `hv` (0 or 1).
    pub fn decode(r: &mut Bytes, hv: i16) -> Result<Self, DecodeError> {
        let correlation_id = wire::i32(r).map_err(|e| e.at("correlation_id"))?;
        if hv >= 1 {
            skip_tagged_fields(r).map_err(|e| e.at("_tagged_fields"))?;
        }
        Ok(ResponseHeader { correlation_id })
    }

    /// Writes this header as version `hv`.
    pub fn encode(&self, w: &mut BytesMut, hv: i16) {
        w.put_i32(self.correlation_id);
        if hv >= 1 {
            wire::put_uvarint(w, 0);
        }
    }
}

/// Skips a tagged-field section whose fields are all unknown to us.
fn skip_tagged_fields(r: &mut Bytes) -> Result<(), DecodeError> {
    let count = wire::uvarint(r)?;
    for _ in 0..count {
        let _tag = wire::uvarint(r)?;
        let size = wire::uvarint(r)?;
        wire::skip(r, u64::from(size))?;
    }
    Ok(())
}

/// A decoded request: its header and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The header.
    pub header: RequestHeader,
    /// The body, decoded at `header.api_version`.
    pub body: RequestBody,
}

/// A request frame that could not be decoded; carries the header when it was read,
/// so the broker can answer (or decide to close) as Kafka would.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct RequestError {
    /// The header, if it could be read.
    pub header: Option<RequestHeader>,
    /// What went wrong.
    pub error: DecodeError,
}

impl Request {
    /// Decodes a request frame (the bytes after the size prefix). Trailing bytes
    /// after the body are ignored, as Kafka does.
    pub fn decode(frame: Bytes) -> Result<Request, RequestError> {
        let mut r = frame;
        // Peek at key and version to learn the header version.
        if r.len() < 4 {
            let error = wire::need(&r, 4).map_err(|e| e.at("api_key")).err().unwrap_or_else(|| {
                DecodeError::new(DecodeErrorKind::Truncated { needed: 4, remaining: r.len() })
            });
            return Err(RequestError { header: None, error });
        }
        let raw_key = i16::from_be_bytes([r[0], r[1]]);
        let version = i16::from_be_bytes([r[2], r[3]]);
        let key = ApiKey::from_i16(raw_key);
        // Unknown keys: read the v1 header so the caller has the correlation id.
        let hv = key.map_or(1, |k| request_header_version(k, version));
        let header = RequestHeader::decode(&mut r, hv)
            .map_err(|error| RequestError { header: None, error: error.in_message("RequestHeader", hv) })?;
        let Some(key) = key else {
            let error = DecodeError::new(DecodeErrorKind::UnknownApiKey(raw_key));
            return Err(RequestError { header: Some(header), error });
        };
        match RequestBody::decode(key, &mut r, version) {
            Ok(body) => Ok(Request { header, body }),
            Err(error) => Err(RequestError { header: Some(header), error }),
        }
    }

    /// Encodes this request as a whole frame (size prefix included).
    pub fn encode_frame(&self, w: &mut BytesMut) -> Result<(), EncodeError> {
        let at = begin_frame(w);
        let key = self.body.api_key();
        self.header.encode(w, request_header_version(key, self.header.api_version))?;
        self.body.encode(w, self.header.api_version)?;
        end_frame(w, at)
    }

    /// Like [`encode_frame`](Self::encode_frame), but large records fields
    /// (produce data) are left out of `w`, as [`encode_response_frame_deferred`] does.
    pub fn encode_frame_deferred(&self, w: &mut BytesMut) -> Result<Vec<(usize, Bytes)>, EncodeError> {
        let at = begin_frame(w);
        let key = self.body.api_key();
        let (encoded, records) = wire::with_deferred_records(w, |w| {
            self.header.encode(w, request_header_version(key, self.header.api_version))?;
            self.body.encode(w, self.header.api_version)
        });
        encoded?;
        end_frame_with(w, at, records.iter().map(|(_, b)| b.len()).sum())?;
        Ok(records)
    }
}

/// Encodes a response frame (size prefix, header, body) for a request of
/// `version` with `correlation_id`.
pub fn encode_response_frame(
    w: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    body: &ResponseBody,
) -> Result<(), EncodeError> {
    let at = begin_frame(w);
    ResponseHeader { correlation_id }.encode(w, response_header_version(body.api_key(), version));
    body.encode(w, version)?;
    end_frame(w, at)
}

/// Like [`encode_response_frame`], but large records fields (fetch data) are
/// not copied into `w`: they are returned with the position in `w` where each
/// belongs, and the frame's size prefix counts them. Sending `w` and the
/// records interleaved sends the frame.
pub fn encode_response_frame_deferred(
    w: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    body: &ResponseBody,
) -> Result<Vec<(usize, Bytes)>, EncodeError> {
    let at = begin_frame(w);
    let (encoded, records) = wire::with_deferred_records(w, |w| {
        ResponseHeader { correlation_id }.encode(w, response_header_version(body.api_key(), version));
        body.encode(w, version)
    });
    encoded?;
    end_frame_with(w, at, records.iter().map(|(_, b)| b.len()).sum())?;
    Ok(records)
}

/// Decodes a response frame (after the size prefix) of api `key` at `version`,
/// as a client that sent the request knows them.
pub fn decode_response_frame(
    frame: Bytes,
    key: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, ResponseBody), DecodeError> {
    let mut r = frame;
    let header = ResponseHeader::decode(&mut r, response_header_version(key, version))
        .map_err(|e| e.in_message("ResponseHeader", response_header_version(key, version)))?;
    let body = ResponseBody::decode(key, &mut r, version)?;
    Ok((header, body))
}
