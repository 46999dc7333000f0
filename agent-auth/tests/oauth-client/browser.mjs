// The person's browser, for scripts that drive `agent-auth serve`'s pages: a cookie jar, GETs
// and form posts that follow no redirect (the script reads each `Location`), and the fields of
// a page's form: what every script here (and ../mcp-client/client.mjs) plays a person with.
//
// `browser(base, secrets)`: `base` is the server's origin (sent as `Origin` on posts, as a
// browser does); every `Location` answered is checked against `secrets`, the list the script
// fills with what must never travel in a URL.

// The pages' templates write numeric references (`&#38;`, `&#34;`) as well as named ones.
const decode = (s) =>
  s.replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>')
    .replace(/&#x([0-9a-f]+);/gi, (_, hex) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#([0-9]+);/g, (_, dec) => String.fromCodePoint(Number(dec)))
    .replaceAll('&amp;', '&');

/// The attribute `name` of the tag text `tag`, unescaped.
const attribute = (tag, name) => {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? decode(m[1]) : undefined;
};

/// A page's first form: its action, and what a browser would post of it unchanged — the
/// hidden fields and the ticked checkboxes (but the one valued `untick`).
export function form(html, untick = '') {
  const action = decode(/<form[^>]*action="([^"]*)"/.exec(html)?.[1] ?? '');
  const fields = [];
  for (const [, tag] of html.matchAll(/<input([^>]*)>/g)) {
    const type = attribute(tag, 'type');
    if (type === 'hidden') fields.push([attribute(tag, 'name'), attribute(tag, 'value') ?? '']);
    if (type === 'checkbox' && /\bchecked\b/.test(tag) && attribute(tag, 'value') !== untick) {
      fields.push([attribute(tag, 'name'), attribute(tag, 'value')]);
    }
  }
  return { action, fields };
}

/// The value the page's input `name` is filled in with (a text field), if any.
export function value(html, name) {
  for (const [, tag] of html.matchAll(/<input([^>]*)>/g)) {
    if (attribute(tag, 'name') === name) return attribute(tag, 'value');
  }
  return undefined;
}

export function browser(base, secrets) {
  const jar = new Map();
  async function browse(url, init = {}) {
    const headers = new Headers(init.headers ?? {});
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    const location = response.headers.get('location');
    if (location) {
      for (const secret of secrets) {
        if (location.includes(secret)) throw new Error('a secret in a Location');
      }
    }
    return response;
  }
  async function post(url, fields) {
    return browse(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
      body: new URLSearchParams(fields).toString(),
    });
  }
  return { browse, post, jar };
}
