"""The HTML page documenting every transaction type, generated from
`contracts.registry.TX_TYPES`, so the documentation cannot drift from the rules."""

from __future__ import annotations

import html


def tx_types_page() -> str:
    """HTML page: every transaction type, who may send it, and its body fields."""
    from contracts.registry import TX_TYPES

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>godown transactions</title></head><body>",
        "<h1>godown transaction types</h1>",
        "<p>A transaction is canonical msgpack <code>{chain_id, type, sender, nonce, body, valid_until_ms?}</code> "
        "(maps with sorted str keys, integers only, bytes as bin); the sender signs its exact bytes with Ed25519 and "
        "submits <code>{tx, sig}</code>. Nonces start at 0 and rise by one per sender. Amounts are minor currency "
        "units, quantities the lot's smallest unit, times milliseconds since the epoch.</p>",
    ]
    for name in sorted(TX_TYPES):
        spec = TX_TYPES[name]
        parts.append(f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>")
        parts.append(f"<p>{html.escape(spec.doc)}</p><p>Who may send: {html.escape(', '.join(spec.roles))}</p>")
        parts.append("<table border='1'><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>")
        for f in spec.fields:
            parts.append(
                f"<tr><td>{html.escape(f.name)}</td><td>{html.escape(str(f.type))}</td>"
                f"<td>{'yes' if f.required else 'no'}</td><td>{html.escape(f.description)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
