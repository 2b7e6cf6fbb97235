//! TLS to the controller: trust only the configured CA, and after enrollment present the client
//! certificate the controller issued for the agent's reporting key (mTLS).

use prost::Message as _;
use readi_proto::controller::v1 as cpb;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::config::ControllerLink;
use crate::egress::Egress;

/// Why TLS to the controller cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TlsError(String);

/// The client TLS settings for the controller link.
pub(crate) fn controller_client(
    link: &ControllerLink,
    egress: &Egress,
) -> Result<ClientTlsConfig, TlsError> {
    let ca_path = link
        .ca
        .as_ref()
        .ok_or_else(|| TlsError("controller.ca is required for https://".into()))?;
    let ca = std::fs::read(ca_path)
        .map_err(|e| TlsError(format!("controller.ca {}: {e}", ca_path.display())))?;
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    let enrolled = egress
        .enrollment()
        .map_err(|e| TlsError(e.to_string()))?
        .and_then(|b| cpb::EnrollResponse::decode(b.as_slice()).ok());
    if let Some(e) = enrolled.filter(|e| !e.client_certificate_pem.is_empty()) {
        let pkcs8 = egress
            .identity_pkcs8()
            .map_err(|e| TlsError(e.to_string()))?;
        let key = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8));
        tls = tls.identity(Identity::from_pem(e.client_certificate_pem, key));
    }
    Ok(tls)
}
