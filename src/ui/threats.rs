//! The threats view: detection alerts and unsolicited inbound traffic grouped by source (count, kinds,
//! ports touched, first/last seen), with a one-click timed block and a pre-filled block rule per source.

use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{BlockDuration, UiAction};
use super::stats::{StatsPanel, Threat};
use crate::rules::{Action, RuleSpec};

/// Sources listed at most.
const MAX_SHOWN: usize = 500;

/// Shows the threats table; buttons push `UiAction`s into `actions`.
pub fn threats_ui(ui: &mut egui::Ui, stats: &StatsPanel, actions: &mut Vec<UiAction>) {
    let threats: Vec<(IpAddr, Threat)> = stats
        .threats()
        .into_iter()
        .take(MAX_SHOWN)
        .map(|(ip, t)| (ip, t.clone()))
        .collect();
    if threats.is_empty() {
        ui.label("No alerts and no denied inbound traffic yet.");
        return;
    }
    ui.label(format!(
        "{} sources with detection alerts or denied inbound traffic, most packets first.",
        threats.len()
    ));
    egui::ScrollArea::vertical()
        .auto_shrink([false; 2])
        .show(ui, |ui| {
            egui::Grid::new("threats")
                .striped(true)
                .num_columns(8)
                .show(ui, |ui| {
                    for title in [
                        "Source",
                        "Packets",
                        "Denied",
                        "Alerts",
                        "Ports touched",
                        "First / last seen",
                        "",
                        "",
                    ] {
                        ui.strong(title);
                    }
                    ui.end_row();
                    for (ip, t) in &threats {
                        row_ui(ui, *ip, t, actions);
                        ui.end_row();
                    }
                });
        });
}

fn row_ui(ui: &mut egui::Ui, ip: IpAddr, t: &Threat, actions: &mut Vec<UiAction>) {
    ui.label(ip.to_string());
    ui.label(t.packets.to_string());
    ui.label(t.denied.to_string());
    let kinds = t.alerts.iter().copied().collect::<Vec<_>>().join(", ");
    ui.label(&kinds);
    ui.label(ports_text(t));
    let time = |us: i64| super::widgets::time_text(us).get(..8).unwrap_or("").to_owned();
    ui.label(format!("{} / {}", time(t.first_micros), time(t.last_micros)));
    if ui
        .button(format!("Block {ip} for 1 h"))
        .on_hover_text("Put the source on the kernel block list for one hour")
        .clicked()
    {
        actions.push(UiAction::Block {
            addr: IpNet::from(ip),
            duration: BlockDuration::Hour1,
            reason: reason(t, &kinds),
        });
    }
    if ui.button(format!("Block rule for {ip}")).clicked() {
        actions.push(UiAction::EditNewRule(RuleSpec {
            name: format!("block {ip}"),
            action: Action::Block,
            src: vec![ip.to_string()],
            comment: format!("from the threats view: {}", reason(t, &kinds)),
            ..RuleSpec::default()
        }));
    }
}

fn reason(t: &Threat, kinds: &str) -> String {
    let mut text = format!(
        "{} packets, {} denied, {} ports",
        t.packets,
        t.denied,
        t.ports.len()
    );
    if !kinds.is_empty() {
        text.push_str(", alerts: ");
        text.push_str(kinds);
    }
    text
}

/// Up to 12 ports, then `(+N)`.
fn ports_text(t: &Threat) -> String {
    let ports: Vec<String> = t.ports.iter().take(12).map(ToString::to_string).collect();
    let more = t.ports.len().saturating_sub(12);
    if more > 0 {
        format!("{} (+{more})", ports.join(","))
    } else {
        ports.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_abbreviated() {
        let t = Threat {
            ports: (1..=20).collect(),
            ..Threat::default()
        };
        assert_eq!(ports_text(&t), "1,2,3,4,5,6,7,8,9,10,11,12 (+8)");
        assert_eq!(
            reason(&t, "port-scan"),
            "0 packets, 0 denied, 20 ports, alerts: port-scan"
        );
    }
}
