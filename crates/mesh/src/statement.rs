//! What vouches and revocations share: a short signed statement by one
//! operator, its signing, checking and errors.
//!
//! A statement's encoding is its format version byte, its fields, and a
//! 64-byte Ed25519 signature by the operator who makes the statement (the
//! voucher, the issuer) over the bytes before it, in the statement's own
//! signing domain.

use crate::armour::ArmourError;
use crate::codec::{self, DecodeError, Reader, Writer};
use crate::identity::{Domain, OperatorId, OperatorSecret, is_blank_signature};

/// The longest encoded statement; every valid one is shorter.
const MAX_STATEMENT_LEN: usize = 256;

/// Why a vouch or revocation could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignStatementError {
    /// The key given is not the key of the operator making the statement.
    #[error(
        "the {kind} is to be signed by operator {stated}, but the key given is operator {signer}'s"
    )]
    NotTheSigner {
        /// `vouch` or `revocation`.
        kind: &'static str,
        /// The operator named as voucher or issuer.
        stated: OperatorId,
        /// The operator of the key given.
        signer: OperatorId,
    },
    /// A vouch by an operator for itself.
    #[error("operator {operator} cannot vouch for itself")]
    SelfVouch {
        /// The operator.
        operator: OperatorId,
    },
}

/// Why bytes or text are not a signed vouch or revocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseStatementError {
    /// The text is not the armoured kind expected.
    #[error(transparent)]
    Armour(#[from] ArmourError),
    /// The bytes are not an encoding of the kind expected.
    #[error("malformed {kind}: {source}")]
    Malformed {
        /// `vouch` or `revocation`.
        kind: &'static str,
        /// What is wrong.
        source: DecodeError,
    },
    /// A vouch by an operator for itself.
    #[error("operator {operator} cannot vouch for itself")]
    SelfVouch {
        /// The operator.
        operator: OperatorId,
    },
    /// The signature field is blank.
    #[error("the {kind} by operator {signer} is not signed")]
    Unsigned {
        /// `vouch` or `revocation`.
        kind: &'static str,
        /// The operator named as voucher or issuer.
        signer: OperatorId,
    },
    /// The signature does not verify under the operator named.
    #[error(
        "signature does not verify: the {kind} was altered, or not signed by operator {signer}"
    )]
    BadSignature {
        /// `vouch` or `revocation`.
        kind: &'static str,
        /// The operator named as voucher or issuer.
        signer: OperatorId,
    },
}

/// The kind of statement, for signing domains and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementKind {
    Vouch,
    Revocation,
}

impl StatementKind {
    pub(crate) const fn word(self) -> &'static str {
        match self {
            Self::Vouch => "vouch",
            Self::Revocation => "revocation",
        }
    }

    const fn domain(self) -> Domain {
        match self {
            Self::Vouch => Domain::Vouch,
            Self::Revocation => Domain::Revocation,
        }
    }

    pub(crate) fn malformed(self, source: DecodeError) -> ParseStatementError {
        ParseStatementError::Malformed {
            kind: self.word(),
            source,
        }
    }
}

/// Signs the statement `write` encodes, as `stated`, with `secret`.
pub(crate) fn sign(
    kind: StatementKind,
    stated: OperatorId,
    secret: &OperatorSecret,
    write: impl FnOnce(&mut Writer),
) -> Result<Vec<u8>, SignStatementError> {
    let signer = secret.operator_id();
    if signer != stated {
        return Err(SignStatementError::NotTheSigner {
            kind: kind.word(),
            stated,
            signer,
        });
    }
    let mut w = Writer::versioned();
    write(&mut w);
    let signature = secret.sign(kind.domain(), w.as_slice());
    w.array(&signature);
    Ok(w.into_bytes())
}

/// Decodes a statement with `read`, which returns the statement and the
/// operator who must have signed it, then checks the signature.
pub(crate) fn verify<T>(
    kind: StatementKind,
    bytes: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<(T, OperatorId), ParseStatementError>,
) -> Result<T, ParseStatementError> {
    if bytes.len() > MAX_STATEMENT_LEN {
        return Err(kind.malformed(DecodeError::TooLong {
            field: kind.word(),
            len: bytes.len(),
            max: MAX_STATEMENT_LEN,
        }));
    }
    let (body, signature) = codec::split_signature(bytes).map_err(|e| kind.malformed(e))?;
    let mut r = Reader::new(body);
    r.version().map_err(|e| kind.malformed(e))?;
    let (statement, signer) = read(&mut r)?;
    r.finish().map_err(|e| kind.malformed(e))?;
    if is_blank_signature(&signature) {
        return Err(ParseStatementError::Unsigned {
            kind: kind.word(),
            signer,
        });
    }
    signer
        .verify(kind.domain(), body, &signature)
        .map_err(|_| ParseStatementError::BadSignature {
            kind: kind.word(),
            signer,
        })?;
    Ok(statement)
}

/// Reads an operator id field.
pub(crate) fn operator_id(
    kind: StatementKind,
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<OperatorId, ParseStatementError> {
    let bytes = r.array(field).map_err(|e| kind.malformed(e))?;
    OperatorId::from_bytes(&bytes).map_err(|_| {
        kind.malformed(DecodeError::Invalid {
            field,
            reason: "not an Ed25519 public key",
        })
    })
}
