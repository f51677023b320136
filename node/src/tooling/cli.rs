//! The operator CLI (`node cluster ...`), in the spirit of Petabridge.Cmd: show the
//! members as a node sees them, make a member leave, down one, or down every member
//! the node sees as unreachable; and manage the transport keyring (`keys`).

use crate::config::{ClusterAction, ClusterArgs, KeysAction};
use crate::tooling::client::request;
use shared::api::{InstallKey, KeysResponse, MembersResponse};

/// Runs one operator command; the error is printed by the caller.
pub async fn run(args: ClusterArgs) -> Result<(), String> {
    let token = args.token.as_deref();
    match args.action {
        ClusterAction::Show => {
            let members = fetch_members(&args.api).await?;
            println!("{}", render(&members));
            Ok(())
        }
        ClusterAction::Leave { address } => operate(&args.api, token, &address, "Leave").await,
        ClusterAction::Down { address } => operate(&args.api, token, &address, "Down").await,
        ClusterAction::DownUnreachable => {
            let members = fetch_members(&args.api).await?;
            if members.unreachable.is_empty() {
                println!("nothing is unreachable");
            }
            for unreachable in &members.unreachable {
                operate(&args.api, token, &unreachable.node, "Down").await?;
            }
            Ok(())
        }
        ClusterAction::Keys { action } => keys(&args.api, token, action).await,
        ClusterAction::Ready => {
            let reply = request(&args.api, "GET", "/ready", None, None).await?;
            match reply.status {
                200 => Ok(()),
                status => Err(format!("not ready ({status}): {}", reply.body.trim())),
            }
        }
    }
}

async fn keys(api: &str, token: Option<&str>, action: KeysAction) -> Result<(), String> {
    let reply = match &action {
        KeysAction::List => request(api, "GET", "/cluster/keys", None, None).await?,
        KeysAction::Install { secret } => {
            let body = serde_json::to_string(&InstallKey {
                secret: secret.clone(),
            })
            .map_err(|e| e.to_string())?;
            let json = Some(("application/json", body));
            request(api, "POST", "/cluster/keys", token, json).await?
        }
        KeysAction::Use { id } => {
            let path = format!("/cluster/keys/{id}/primary");
            request(api, "PUT", &path, token, None).await?
        }
        KeysAction::Remove { id } => {
            let path = format!("/cluster/keys/{id}");
            request(api, "DELETE", &path, token, None).await?
        }
    };
    if !(200..300).contains(&reply.status) {
        return Err(format!("{} {}", reply.status, reply.body.trim()));
    }
    let listed: KeysResponse =
        serde_json::from_str(&reply.body).map_err(|e| format!("unexpected answer: {e}"))?;
    for key in listed.keys {
        let mark = if key.primary { " (primary)" } else { "" };
        println!("{}{mark}", key.id);
    }
    Ok(())
}

async fn fetch_members(api: &str) -> Result<MembersResponse, String> {
    let reply = request(api, "GET", "/cluster/members", None, None).await?;
    if reply.status != 200 {
        return Err(format!("{}: {}", reply.status, reply.body));
    }
    serde_json::from_str(&reply.body).map_err(|e| format!("unexpected answer: {e}"))
}

async fn operate(
    api: &str,
    token: Option<&str>,
    address: &str,
    operation: &str,
) -> Result<(), String> {
    let path = format!("/cluster/members/{address}");
    let body = (
        "application/x-www-form-urlencoded",
        format!("operation={operation}"),
    );
    let reply = request(api, "PUT", &path, token, Some(body)).await?;
    if reply.status == 200 {
        println!("{operation} {address}: ok");
        Ok(())
    } else {
        Err(format!(
            "{operation} {address}: {} {}",
            reply.status, reply.body
        ))
    }
}

/// A table of the members, the leader and the unreachable ones.
pub fn render(m: &MembersResponse) -> String {
    let mut out = format!(
        "node {} ({}); leader {}; oldest {}\n",
        m.self_node,
        m.self_status.as_deref().unwrap_or("not a member"),
        m.leader.as_deref().unwrap_or("none"),
        m.oldest.as_deref().unwrap_or("none")
    );
    out.push_str(&format!(
        "{:<24} {:<10} {:<22} roles\n",
        "address", "status", "uid"
    ));
    for member in &m.members {
        let unreachable = m.unreachable.iter().find(|u| u.node == member.node);
        let status = match unreachable {
            Some(_) => format!("{}!", member.status),
            None => member.status.clone(),
        };
        out.push_str(&format!(
            "{:<24} {:<10} {:<22} {}\n",
            member.node,
            status,
            member.node_uid,
            member.roles.join(",")
        ));
    }
    for u in &m.unreachable {
        out.push_str(&format!(
            "unreachable: {} (observed by {})\n",
            u.node,
            u.observed_by.join(", ")
        ));
    }
    out
}
