//! collectd's unixsock plugin: `LISTVAL`, healthy when the status line has a non-negative
//! count (`12 Values found`), as `collectdctl listval` did.

use super::Endpoint;
use crate::Outcome;
use crate::context::Context;

pub fn listval(endpoint: &Endpoint, ctx: &Context) -> Outcome {
    let status = endpoint.open(ctx).and_then(|mut stream| {
        stream.send(b"LISTVAL\n")?;
        stream.read_line()
    });
    match status {
        Ok(line) => match line.split_whitespace().next().map(str::parse::<i64>) {
            Some(Ok(count)) if count >= 0 => {
                Outcome::healthy(format!("collectd on {endpoint}: {line}"))
            }
            _ => Outcome::unhealthy(format!(
                "collectd on {endpoint} answered LISTVAL with: {line}"
            )),
        },
        Err(e) => Outcome::unhealthy(format!("collectd on {endpoint}: {e}")),
    }
}
