//! `evsite demo --mqtt URL`: the demo site's sessions, alerts, status and telemetry go to a
//! broker exactly as the daemon's would — through a store's outbox, the recorder and the sync
//! that [`crate::site::SiteBuilder`] wires for any site with a store — so a cloud consumer can
//! be tried against the demo. The store lives in a temporary directory removed at the end;
//! cloud commands reach the demo's controller.

/// The `[mqtt]` section the demo adds to its config for `url`.
pub fn mqtt_section(url: &str) -> String {
    format!(
        "\n[mqtt]\nurl = {}\nclient_id = \"evsite-demo-{}\"\ntelemetry_interval_s = 2\n",
        toml::Value::String(url.to_string()),
        std::process::id()
    )
}
