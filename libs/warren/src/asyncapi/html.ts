import type { AsyncApiChannel, AsyncApiDocument, AsyncApiOperation } from './document.js';

/**
 * A readable, self-contained HTML page of an AsyncAPI document: no script, no stylesheet or
 * font fetched from anywhere, so it works on a loopback-only host and behind any proxy.
 */
export function renderHtml(document: AsyncApiDocument, jsonPath: string): string {
  const { info, channels, operations, components } = document;
  const body = [
    `<header><h1>${esc(info.title)} <small>${esc(info.version)}</small></h1>`,
    info.description ? `<p>${esc(info.description)}</p>` : '',
    `<p class="meta">AsyncAPI ${esc(document.asyncapi)} · <a href="${esc(jsonPath)}">${esc(jsonPath)}</a></p></header>`,
    section(
      'Operations',
      Object.entries(operations).map(([opId, op]) => operation(opId, op)),
    ),
    section(
      'Channels',
      Object.entries(channels).map(([chId, ch]) => channel(chId, ch)),
    ),
    section(
      'Messages',
      Object.entries(components.messages).map(
        ([msgId, m]) =>
          `<article id="message-${esc(msgId)}"><h3>${esc(msgId)}</h3>` +
          (m.summary ? `<p>${esc(m.summary)}</p>` : '') +
          `<p class="meta">${esc(m.contentType)}</p>` +
          (m.payload
            ? `<pre>${esc(JSON.stringify(m.payload, null, 2))}</pre>`
            : '<p class="meta">payload not described</p>') +
          '</article>',
      ),
    ),
  ].join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)} — AsyncAPI</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:0 auto;padding:1rem 2rem;color:#1d2330}
h1 small{font-weight:normal;color:#667}h2{border-bottom:2px solid #dde;padding-bottom:.2rem;margin-top:2rem}
article{border:1px solid #dde;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0}
h3{margin:.2rem 0;font-size:1.05rem}.meta{color:#667;font-size:.9rem;margin:.2rem 0}
.action{display:inline-block;border-radius:4px;padding:0 .5rem;margin-right:.5rem;font-size:.85rem;color:#fff}
.receive{background:#2b7a4b}.send{background:#2d5fa8}
pre{background:#f5f6fa;padding:.6rem;border-radius:4px;overflow:auto;font-size:.85rem}
table{border-collapse:collapse}td{padding:.1rem .8rem .1rem 0;vertical-align:top}code{background:#f0f1f5;padding:0 .2rem}
</style></head><body>
${body}
</body></html>
`;
}

function operation(opId: string, op: AsyncApiOperation): string {
  const rows: [string, string][] = [
    ['channel', link(op.channel.$ref)],
    ['messages', op.messages.map((m) => link(m.$ref)).join(', ')],
  ];
  if (op.reply) rows.push(['reply', op.reply.messages.map((m) => link(m.$ref)).join(', ')]);
  const warren = op['x-warren'] as Record<string, unknown> | undefined;
  if (warren) {
    rows.push(['prefetch', esc(String(warren.prefetch))]);
    rows.push(['on failure', `<code>${esc(JSON.stringify(warren.failure))}</code>`]);
  }
  return (
    `<article id="operation-${esc(opId)}"><h3><span class="action ${esc(op.action)}">${esc(op.action)}</span>${esc(opId)}</h3>` +
    (op.summary ? `<p>${esc(op.summary)}</p>` : '') +
    table(rows) +
    '</article>'
  );
}

function channel(chId: string, ch: AsyncApiChannel): string {
  const amqp = ch.bindings.amqp;
  const rows: [string, string][] = [
    ['address', ch.address === null ? '<em>dynamic</em>' : `<code>${esc(ch.address)}</code>`],
  ];
  const target = (amqp.exchange ?? amqp.queue) as Record<string, unknown> | undefined;
  if (target) rows.push([amqp.is === 'queue' ? 'queue' : 'exchange', `<code>${esc(JSON.stringify(target))}</code>`]);
  const bindings = ch['x-bindings'] as { exchange: string; routingKey: string }[] | undefined;
  if (bindings) {
    rows.push([
      'bound to',
      bindings
        .map((b) => `<code>${esc(b.exchange)}</code> with <code>${esc(b.routingKey || '(none)')}</code>`)
        .join('<br>'),
    ]);
  }
  const messages = Object.values(ch.messages);
  if (messages.length > 0) rows.push(['messages', messages.map((m) => link(m.$ref)).join(', ')]);
  return (
    `<article id="channel-${esc(chId)}"><h3>${esc(chId)}</h3>` +
    (ch.description ? `<p>${esc(ch.description)}</p>` : '') +
    table(rows) +
    '</article>'
  );
}

function section(title: string, items: string[]): string {
  return `<section><h2>${esc(title)}</h2>${items.length > 0 ? items.join('\n') : '<p class="meta">none</p>'}</section>`;
}

function table(rows: [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><td class="meta">${esc(k)}</td><td>${v}</td></tr>`).join('')}</table>`;
}

/** A `$ref` as a link to its place on the page. */
function link(ref: string): string {
  const parts = ref
    .replace(/^#\//, '')
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const [kind, name, , message] = parts;
  const anchor = message ? `message-${message}` : kind === 'channels' ? `channel-${name}` : `message-${name}`;
  const label = message ?? name;
  return `<a href="#${esc(anchor)}">${esc(label)}</a>`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
