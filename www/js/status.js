/*!
 * chatstack-status widget: one global, SystemStatus.
 *
 *   <div id="system-status"></div>
 *   <script src="/static/js/status.js"></script>
 *   <script>SystemStatus.mount('#system-status', {url: '/api/status', refresh: 10});</script>
 *
 * mount(selectorOrElement, {url: default '/api/status', refresh: seconds, default 10})
 *   -> {stop(), refresh(), element}
 * The mount element receives a `systemstatus` CustomEvent after every poll
 * (detail: {overall, host, generatedAt, stale, error}).
 *
 * No dependencies, no network but `url`. Styles are injected once and scoped
 * under `.css-ss`; no element ids are used, so several widgets can share a page.
 * Text from the status JSON (names, targets, details) is untrusted: it only ever
 * reaches the DOM through textContent / setAttribute, never as markup.
 */
(function () {
  'use strict';
  if (window.SystemStatus) return;

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var STATES = { up: 'UP', degraded: 'DEGRADED', down: 'DOWN', unknown: 'UNKNOWN' };
  var ICONS = { up: '\u2713', degraded: '!', down: '\u2715', unknown: '?' };
  var HEADLINES = {
    up: 'All systems operational',
    degraded: 'Some services need attention',
    down: 'Critical service down',
    unknown: 'State unknown'
  };
  var DEFAULT_STALE_S = 90; // SPEC default, used only when the server does not say

  var CSS = [
    '.css-ss{--ss-fg:#1f2328;--ss-muted:#59636e;--ss-border:#d1d9e0;--ss-card:#fff;--ss-subtle:#f6f8fa;',
    '--ss-up:#1a7f37;--ss-up-bg:#dafbe1;--ss-degraded:#9a6700;--ss-degraded-bg:#fff8c5;--ss-down:#d1242f;--ss-down-bg:#ffebe9;',
    '--ss-unknown:#59636e;--ss-unknown-bg:#eff2f5;--ss-t-up:#2da44e;--ss-t-degraded:#d4a72c;--ss-t-down:#cf222e;--ss-t-unknown:#8c959f;',
    '--ss-warn-bg:#fff8c5;--ss-warn-fg:#4d2d00;--ss-warn-border:#d4a72c;--ss-spark:#0969da;',
    'color:var(--ss-fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;',
    'font-variant-numeric:tabular-nums;min-width:0}',
    '@media (prefers-color-scheme:dark){.css-ss{--ss-fg:#e6edf3;--ss-muted:#9198a1;--ss-border:#30363d;--ss-card:#151b23;--ss-subtle:#1c2128;',
    '--ss-up:#3fb950;--ss-up-bg:rgba(46,160,67,.16);--ss-degraded:#d29922;--ss-degraded-bg:rgba(187,128,9,.18);',
    '--ss-down:#ff7b72;--ss-down-bg:rgba(248,81,73,.16);--ss-unknown:#9198a1;--ss-unknown-bg:rgba(110,118,129,.18);',
    '--ss-t-up:#2ea043;--ss-t-degraded:#d29922;--ss-t-down:#f85149;--ss-t-unknown:#6e7681;',
    '--ss-warn-bg:rgba(187,128,9,.18);--ss-warn-fg:#f2cc60;--ss-warn-border:#9e6a03;--ss-spark:#4493f8}}',
    '.css-ss *,.css-ss *::before,.css-ss *::after{box-sizing:border-box}',
    ':where(.css-ss) :where(h2,h3,h4,p,ul,dl,dd){margin:0;padding:0}',
    ':where(.css-ss) ul{list-style:none}',
    '.css-ss-sr{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}',
    '.css-ss-body{transition:opacity .2s}',
    '.css-ss-dim .css-ss-body{opacity:.5;filter:grayscale(1)}',
    /* warning */
    '.css-ss-warn{display:flex;gap:10px;align-items:flex-start;margin:0 0 14px;padding:12px 14px;border:1px solid var(--ss-warn-border);',
    'border-left-width:4px;border-radius:8px;background:var(--ss-warn-bg);color:var(--ss-warn-fg)}',
    '.css-ss-warn[hidden]{display:none}',
    '.css-ss-warn-icon{font-weight:700;font-size:16px;line-height:1.3}',
    '.css-ss-warn strong{display:block}',
    /* banner */
    '.css-ss-banner{display:flex;flex-wrap:wrap;align-items:center;gap:12px 14px;padding:16px 20px;border-radius:10px;color:#fff;background:var(--ss-b)}',
    '.css-ss-btext{flex:1 1 260px;min-width:0}',
    '.css-ss-banner.css-ss-s-up{--ss-b:#1f883d}.css-ss-banner.css-ss-s-down{--ss-b:#cf222e}',
    '.css-ss-banner.css-ss-s-degraded{--ss-b:#e3b341;color:#1f2328}.css-ss-banner.css-ss-s-unknown{--ss-b:#59636e}',
    '.css-ss-bicon{flex:none;display:grid;place-items:center;width:40px;height:40px;border-radius:50%;font-size:22px;font-weight:800;',
    'background:rgba(255,255,255,.22);border:2px solid currentColor}',
    '.css-ss-btitle{font-size:20px;line-height:1.25;font-weight:700;letter-spacing:.01em}',
    '.css-ss-bstate{font-weight:800;letter-spacing:.06em}',
    '.css-ss-bmeta{margin-top:2px;font-size:13px;opacity:.95}',
    '.css-ss-counts{display:flex;flex-wrap:wrap;gap:6px;margin:0;padding:0;list-style:none}',
    '.css-ss-counts li{padding:3px 10px;border-radius:999px;font-size:13px;font-weight:600;background:rgba(0,0,0,.2);white-space:nowrap}',
    '.css-ss-s-degraded .css-ss-counts li{background:rgba(255,255,255,.5)}',
    /* cards */
    '.css-ss-list{display:grid;gap:12px;margin-top:14px}',
    '.css-ss-card{position:relative;padding:14px 16px 12px 20px;border:1px solid var(--ss-border);border-radius:10px;background:var(--ss-card);overflow:hidden}',
    '.css-ss-card::before{content:"";position:absolute;left:0;top:0;bottom:0;width:4px;background:var(--ss-c)}',
    '.css-ss-s-up{--ss-c:var(--ss-up);--ss-cb:var(--ss-up-bg)}.css-ss-s-degraded{--ss-c:var(--ss-degraded);--ss-cb:var(--ss-degraded-bg)}',
    '.css-ss-s-down{--ss-c:var(--ss-down);--ss-cb:var(--ss-down-bg)}.css-ss-s-unknown{--ss-c:var(--ss-unknown);--ss-cb:var(--ss-unknown-bg)}',
    '.css-ss-head{display:flex;flex-wrap:wrap;align-items:center;gap:6px 10px}',
    '.css-ss-name{font-size:16px;font-weight:650;line-height:1.3;overflow-wrap:anywhere}',
    '.css-ss-unit{color:var(--ss-muted);font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;overflow-wrap:anywhere}',
    '.css-ss-pill{display:inline-flex;align-items:center;gap:5px;padding:2px 10px 2px 8px;border-radius:999px;font-size:12px;font-weight:700;',
    'letter-spacing:.05em;color:var(--ss-c);background:var(--ss-cb);border:1px solid var(--ss-c);white-space:nowrap}',
    '.css-ss-head .css-ss-status{margin-left:auto}',
    '.css-ss-badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;line-height:18px;border:1px solid var(--ss-border);',
    'color:var(--ss-muted);white-space:nowrap}',
    '.css-ss-badge-crit{color:var(--ss-fg);font-weight:600}',
    '.css-ss-badge-heal{color:var(--ss-down);border-color:var(--ss-down);background:var(--ss-down-bg);font-weight:600}',
    '.css-ss-badge-mute{color:var(--ss-fg);background:var(--ss-subtle)}',
    '.css-ss-stats{display:flex;flex-wrap:wrap;gap:8px 28px;margin-top:10px}',
    '.css-ss-stats dt{font-size:11px;font-weight:600;letter-spacing:.06em;text-transform:uppercase;color:var(--ss-muted)}',
    '.css-ss-stats dd{font-size:15px;font-weight:600}',
    '.css-ss-bad{color:var(--ss-down)}',
    '.css-ss-warnc{color:var(--ss-degraded)}',
    '.css-ss-spark{display:block;width:100%;height:34px;margin-bottom:4px;overflow:visible}',
    /* history strip */
    '.css-ss-hist{margin-top:12px}',
    '.css-ss-hhead{display:flex;flex-wrap:wrap;justify-content:space-between;gap:2px 12px;margin-bottom:4px;font-size:12px;color:var(--ss-muted)}',
    '.css-ss-hhead b{font-weight:600;color:var(--ss-fg)}',
    '.css-ss-strip{display:flex;gap:3px;height:24px}',
    '.css-ss-tick{flex:1 1 0;min-width:2px;border-radius:3px;background:var(--ss-t-unknown)}',
    '.css-ss-tick:hover{opacity:.7}',
    '.css-ss-t-up{background:var(--ss-t-up)}',
    '.css-ss-t-down{background:var(--ss-t-down)}',
    '.css-ss-t-degraded{background:repeating-linear-gradient(-45deg,rgba(255,255,255,.45) 0 2px,transparent 2px 5px) var(--ss-t-degraded)}',
    '.css-ss-axis{display:flex;justify-content:space-between;gap:8px;margin-top:4px;font-size:12px;color:var(--ss-muted)}',
    '.css-ss-empty{color:var(--ss-muted);font-size:13px}',
    /* details */
    '.css-ss-details{margin-top:10px;border-top:1px solid var(--ss-border);padding-top:8px}',
    '.css-ss-details summary{cursor:pointer;color:var(--ss-muted);font-size:13px;font-weight:600;width:max-content;max-width:100%;border-radius:4px}',
    '.css-ss-details summary:hover{color:var(--ss-fg)}',
    '.css-ss summary:focus-visible{outline:2px solid var(--ss-spark);outline-offset:2px}',
    '.css-ss-checks{display:grid;gap:8px;margin-top:8px}',
    '.css-ss-check{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;align-items:baseline;padding:8px 10px;border-radius:8px;background:var(--ss-subtle)}',
    '.css-ss-check .css-ss-pill{grid-row:span 3;align-self:start;font-size:11px}',
    '.css-ss-ctarget{font-weight:600;overflow-wrap:anywhere}',
    '.css-ss-ctype{display:inline-block;margin-right:6px;padding:0 6px;border-radius:4px;font-size:11px;font-weight:700;text-transform:uppercase;',
    'letter-spacing:.04em;color:var(--ss-muted);border:1px solid var(--ss-border)}',
    '.css-ss-cmeta{font-size:12px;color:var(--ss-muted)}',
    '.css-ss-cert-warn{color:var(--ss-degraded);font-weight:600}.css-ss-cert-bad{color:var(--ss-down);font-weight:600}',
    '.css-ss-mono,.css-ss-cdetail{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}',
    '.css-ss-cdetail{font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere}',
    '.css-ss-restarts{margin-top:10px;font-size:13px}',
    '.css-ss-restarts h4{margin:0 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--ss-muted)}',
    '.css-ss-restarts li{padding:2px 0;overflow-wrap:anywhere}',
    '.css-ss-nodata{padding:28px 16px;text-align:center;color:var(--ss-muted);border:1px dashed var(--ss-border);border-radius:10px}',
    '@media (max-width:520px){.css-ss-banner{padding:14px}.css-ss-btitle{font-size:18px}.css-ss-card{padding:12px 12px 10px 16px}',
    '.css-ss-stats{gap:8px 18px}.css-ss-strip{gap:2px}.css-ss-tick{border-radius:2px}',
    '.css-ss-head .css-ss-name{order:-2;flex:1 0 60%}.css-ss-head .css-ss-status{order:-1}}'
  ].join('\n');

  var cssInjected = false;
  function injectCss() {
    if (cssInjected || document.querySelector('style[data-css-ss]')) { cssInjected = true; return; }
    var s = document.createElement('style');
    s.setAttribute('data-css-ss', '');
    s.textContent = CSS;
    (document.head || document.documentElement).appendChild(s);
    cssInjected = true;
  }

  // ---- small helpers (class names are constants; untrusted text goes via textContent) ----
  function h(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG_NS, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function st(s) { return Object.prototype.hasOwnProperty.call(STATES, s) ? s : 'unknown'; }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function parseT(s) { var t = typeof s === 'string' ? Date.parse(s) : NaN; return isFinite(t) ? t : null; }

  function fmtDur(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min';
    var hr = Math.floor(m / 60);
    if (hr < 24) return hr + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
    var d = Math.floor(hr / 24);
    return d + ' d' + (hr % 24 ? ' ' + (hr % 24) + ' h' : '');
  }
  function fmtRel(t, now) {
    var d = now - t;
    if (Math.abs(d) < 5000) return 'just now';
    return d > 0 ? fmtDur(d) + ' ago' : 'in ' + fmtDur(-d);
  }
  function fmtAbs(t) {
    var d = new Date(t);
    return d.toLocaleString() + ' (' + d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') + ')';
  }
  function fmtClock(t) {
    return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }
  function fmtLat(ms) {
    if (ms == null) return '\u2014';
    if (ms >= 1000) return (ms / 1000).toFixed(ms >= 10000 ? 1 : 2) + ' s';
    if (ms >= 100) return Math.round(ms) + ' ms';
    return ms.toFixed(1) + ' ms';
  }
  function fmtPct(p) {
    if (p >= 100) return '100%';
    return (p >= 99.95 ? 99.9 : p).toFixed(1) + '%';
  }
  // A <time> whose text is kept current by the widget's clock: mode 'ago' | 'for' | 'rel'.
  function timeEl(t, mode, cls) {
    var e = h('time', cls);
    e.setAttribute('datetime', new Date(t).toISOString());
    e.setAttribute('title', fmtAbs(t));
    e.setAttribute('data-ss-t', String(t));
    e.setAttribute('data-ss-mode', mode);
    return e;
  }
  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }

  // "certificate: 9 d left" for a check with cert_expires_at, coloured as a
  // warning within its cert_warn_s and as bad once expired or within cert_crit_s.
  function certEl(ck, now) {
    var exp = parseT(ck.cert_expires_at);
    if (exp == null) return null;
    var left = exp - now, day = 86400000;
    var warn = num(ck.cert_warn_s), crit = num(ck.cert_crit_s);
    var text = left < 0 ? 'certificate expired ' + fmtDur(-left) + ' ago'
      : 'certificate: ' + (left >= 2 * day ? Math.floor(left / day) + ' d' : fmtDur(left)) + ' left';
    var cls = 'css-ss-cert';
    if (left < 0 || (crit != null && left < crit * 1000)) cls += ' css-ss-cert-bad';
    else if (warn != null && left < warn * 1000) cls += ' css-ss-cert-warn';
    var e = h('span', cls, text);
    e.setAttribute('title', 'expires ' + fmtAbs(exp));
    return e;
  }

  function pill(status, extraCls) {
    var s = st(status);
    var p = h('span', 'css-ss-pill css-ss-s-' + s + (extraCls ? ' ' + extraCls : ''));
    var i = h('span', null, ICONS[s]);
    i.setAttribute('aria-hidden', 'true');
    p.appendChild(i);
    p.appendChild(document.createTextNode(STATES[s]));
    return p;
  }

  // Latency of the first check that answered (up or degraded); a refused or failed
  // probe's time says nothing about the service, so a down service shows a dash.
  function bestLatency(svc) {
    var checks = (Array.isArray(svc.checks) ? svc.checks : []).filter(function (c) { return c && typeof c === 'object'; });
    for (var i = 0; i < checks.length; i++) {
      var s = st(checks[i].status);
      if ((s === 'up' || s === 'degraded') && num(checks[i].latency_ms) != null) return num(checks[i].latency_ms);
    }
    return null;
  }

  function sparkline(hist) {
    var vals = hist.map(function (x) { return x ? num(x.latency_ms) : null; });
    var have = vals.filter(function (v) { return v != null; });
    if (have.length < 2) return null;
    var min = Math.min.apply(null, have), max = Math.max.apply(null, have);
    var W = 600, H = 34, n = vals.length, span = max - min || 1;
    var s = svg('svg', {
      viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', focusable: 'false',
      'class': 'css-ss-spark'
    });
    var label = 'Latency over the history: min ' + fmtLat(min) + ', max ' + fmtLat(max) +
      ', latest ' + fmtLat(have[have.length - 1]);
    s.setAttribute('aria-label', label);
    var title = svg('title', {});
    title.textContent = label;
    s.appendChild(title);
    var seg = [], segs = [];
    vals.forEach(function (v, i) {
      if (v == null) { if (seg.length) segs.push(seg); seg = []; return; }
      var x = ((i + 0.5) / n) * W; // centre of tick i in the strip below
      var y = H - 2 - ((v - min) / span) * (H - 6);
      seg.push([x, y]);
    });
    if (seg.length) segs.push(seg);
    var half = W / n / 2;
    segs.forEach(function (pts) {
      if (pts.length === 1) pts = [[pts[0][0] - half * 0.6, pts[0][1]], [pts[0][0] + half * 0.6, pts[0][1]]];
      var line = pts.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join(' ');
      var x0 = pts[0][0].toFixed(1), x1 = pts[pts.length - 1][0].toFixed(1);
      s.appendChild(svg('polygon', {
        points: x0 + ',' + H + ' ' + line + ' ' + x1 + ',' + H, fill: 'var(--ss-spark)', 'fill-opacity': 0.12
      }));
      s.appendChild(svg('polyline', {
        points: line, fill: 'none', stroke: 'var(--ss-spark)', 'stroke-width': 1.5,
        'stroke-linejoin': 'round', 'stroke-linecap': 'round', 'vector-effect': 'non-scaling-stroke'
      }));
    });
    return s;
  }

  // ---- one widget ----
  function Widget(el, opts) {
    this.el = el;
    this.url = typeof opts.url === 'string' && opts.url ? opts.url : '/api/status';
    var r = Number(opts.refresh);
    this.refreshMs = (isFinite(r) && r > 0 ? Math.max(1, r) : 10) * 1000;
    this.offset = 0;          // server clock minus browser clock, from generated_at + age_s
    this.data = null;         // last good document
    this.error = null;        // {msg, since} while polls fail
    this.prev = null;         // {overall, problem, services:{name:status}} for announcements
    this.open = Object.create(null); // service names whose <details> are open
    this.stopped = false;
    this.timer = null;
    this.clock = null;
    this.ctrl = null;

    injectCss();
    var root = h('div', 'css-ss');
    this.warn = h('div', 'css-ss-warn');
    this.warn.hidden = true;
    this.body = h('div', 'css-ss-body');
    this.live = h('div', 'css-ss-sr');
    this.live.setAttribute('aria-live', 'polite');
    this.live.setAttribute('role', 'status');
    var loading = h('p', 'css-ss-nodata', 'Loading status\u2026');
    this.body.appendChild(loading);
    root.appendChild(this.warn);
    root.appendChild(this.body);
    root.appendChild(this.live);
    this.root = root;
    el.textContent = '';
    el.appendChild(root);

    var self = this;
    root.addEventListener('toggle', function (e) {
      var t = e.target;
      if (t && t.tagName === 'DETAILS' && t.hasAttribute('data-ss-key')) {
        var k = t.getAttribute('data-ss-key');
        if (t.open) self.open[k] = true; else delete self.open[k];
      }
    }, true);
    this.onVisible = function () {
      if (!document.hidden && !self.stopped) self.poll();
    };
    document.addEventListener('visibilitychange', this.onVisible);
    this.clock = setInterval(function () { self.tickClock(); }, 5000);
    this.poll();
  }

  Widget.prototype.now = function () { return Date.now() + this.offset; };

  Widget.prototype.poll = function () {
    var self = this;
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.ctrl) this.ctrl.abort();
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    this.ctrl = ctrl;
    var to = setTimeout(function () { if (ctrl) ctrl.abort(); }, Math.max(5000, this.refreshMs));
    var status = 0;
    fetch(this.url, {
      cache: 'no-store', credentials: 'same-origin',
      headers: { Accept: 'application/json' }, signal: ctrl ? ctrl.signal : undefined
    }).then(function (res) {
      status = res.status;
      return res.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = null; }
        var isObj = body && typeof body === 'object' && !Array.isArray(body);
        if (!res.ok) {
          var why = isObj && body.error != null ? String(body.error) : (res.statusText || 'error');
          throw new Error('HTTP ' + res.status + ': ' + why);
        }
        if (!isObj) throw new Error('the response is not a JSON object');
        if (body.error != null && !Array.isArray(body.services)) throw new Error(String(body.error));
        if (!Array.isArray(body.services)) throw new Error('the response has no "services" list');
        return body;
      });
    }).then(function (body) {
      if (ctrl !== self.ctrl || self.stopped) return;
      self.onData(body);
    }, function (err) {
      if (ctrl !== self.ctrl || self.stopped) return;
      var msg = err && err.name === 'AbortError' ? 'request timed out'
        : (status ? (err && err.message) : 'cannot reach the server (' + ((err && err.message) || 'network error') + ')');
      self.onError(msg);
    }).then(function () {
      clearTimeout(to);
      if (ctrl !== self.ctrl || self.stopped) return;
      self.ctrl = null;
      self.timer = setTimeout(function () { self.poll(); }, self.refreshMs);
    });
  };

  Widget.prototype.onData = function (d) {
    var gen = parseT(d.generated_at);
    var age = num(d.age_s);
    if (gen != null && age != null) this.offset = gen + age * 1000 - Date.now();
    else this.offset = 0;
    this.data = d;
    this.error = null;
    this.render();
  };

  Widget.prototype.onError = function (msg) {
    if (!this.error) this.error = { msg: msg, since: this.now() };
    else this.error.msg = msg;
    this.render();
  };

  Widget.prototype.isStale = function () {
    var d = this.data;
    if (!d) return false;
    if (typeof d.stale === 'boolean') return d.stale;
    var gen = parseT(d.generated_at);
    return gen != null && this.now() - gen > DEFAULT_STALE_S * 1000;
  };

  Widget.prototype.render = function () {
    var d = this.data, stale = this.isStale();
    this.renderWarning(stale);
    this.root.classList.toggle('css-ss-dim', !!(d && (stale || this.error)));
    if (d) this.renderBody(d, stale);
    else if (this.error) {
      this.body.textContent = '';
      this.body.appendChild(h('p', 'css-ss-nodata', 'No status data yet.'));
    }
    this.tickClock();
    this.announce(stale);
    var detail = {
      overall: d ? st(d.overall) : null, host: d && typeof d.host === 'string' ? d.host : null,
      generatedAt: d ? d.generated_at || null : null, stale: stale, error: this.error ? this.error.msg : null
    };
    var ev;
    try { ev = new CustomEvent('systemstatus', { detail: detail }); } catch (e) { ev = null; }
    if (ev) this.el.dispatchEvent(ev);
  };

  Widget.prototype.renderWarning = function (stale) {
    var w = this.warn, d = this.data;
    w.textContent = '';
    if (!this.error && !stale) { w.hidden = true; return; }
    w.hidden = false;
    var icon = h('span', 'css-ss-warn-icon', '\u26A0');
    icon.setAttribute('aria-hidden', 'true');
    var box = h('div');
    var gen = d ? parseT(d.generated_at) : null;
    if (this.error) {
      var t = h('strong', null, d ? 'Cannot refresh the status \u2014 showing the last data received'
        : 'Cannot load the status');
      box.appendChild(t);
      var p = h('span');
      p.appendChild(document.createTextNode(this.error.msg + ' \u2014 failing since '));
      p.appendChild(timeEl(this.error.since, 'ago'));
      if (gen != null) {
        p.appendChild(document.createTextNode('. Data shown was generated '));
        p.appendChild(timeEl(gen, 'ago'));
      }
      p.appendChild(document.createTextNode('.'));
      box.appendChild(p);
    } else {
      box.appendChild(h('strong', null, 'Stale data \u2014 the monitor has not written a fresh status'));
      var q = h('span');
      q.appendChild(document.createTextNode('Last status generated '));
      if (gen != null) q.appendChild(timeEl(gen, 'ago'));
      else q.appendChild(document.createTextNode('at an unknown time'));
      q.appendChild(document.createTextNode('. Is the chatstack-status daemon (or its timer) running?'));
      box.appendChild(q);
    }
    w.appendChild(icon);
    w.appendChild(box);
  };

  Widget.prototype.renderBody = function (d, stale) {
    var focusKey = null, ae = document.activeElement;
    if (ae && this.root.contains(ae) && ae.hasAttribute('data-ss-key')) focusKey = ae.getAttribute('data-ss-key');

    var frag = document.createDocumentFragment();
    var overall = st(d.overall);
    var services = d.services.filter(function (s) { return s && typeof s === 'object'; });

    // banner
    var banner = h('div', 'css-ss-banner css-ss-s-' + overall);
    var bi = h('span', 'css-ss-bicon', ICONS[overall]);
    bi.setAttribute('aria-hidden', 'true');
    banner.appendChild(bi);
    var btext = h('div', 'css-ss-btext');
    var title = h('h2', 'css-ss-btitle');
    if (stale || this.error) title.appendChild(document.createTextNode('Last known: '));
    title.appendChild(h('span', 'css-ss-bstate', STATES[overall]));
    title.appendChild(document.createTextNode(' \u2014 ' + HEADLINES[overall]));
    btext.appendChild(title);
    var meta = h('p', 'css-ss-bmeta');
    if (typeof d.host === 'string' && d.host) {
      meta.appendChild(document.createTextNode('Host '));
      meta.appendChild(h('span', 'css-ss-mono css-ss-host', d.host));
      meta.appendChild(document.createTextNode(' \u00B7 '));
    }
    var gen = parseT(d.generated_at);
    meta.appendChild(document.createTextNode('Updated '));
    if (gen != null) meta.appendChild(timeEl(gen, 'ago', 'css-ss-generated'));
    else meta.appendChild(document.createTextNode('at an unknown time'));
    meta.appendChild(document.createTextNode(' \u00B7 refreshes every ' + fmtDur(this.refreshMs)));
    btext.appendChild(meta);
    banner.appendChild(btext);

    var c = { up: 0, degraded: 0, down: 0, unknown: 0 };
    services.forEach(function (s) { c[st(s.status)]++; });
    var counts = h('ul', 'css-ss-counts');
    counts.setAttribute('aria-label', 'Services by state');
    ['down', 'degraded', 'unknown', 'up'].forEach(function (k) {
      if (c[k]) counts.appendChild(h('li', null, c[k] + ' ' + k));
    });
    banner.appendChild(counts);
    frag.appendChild(banner);

    // services
    if (!services.length) frag.appendChild(h('p', 'css-ss-nodata', 'No services configured.'));
    var list = h('ul', 'css-ss-list');
    for (var i = 0; i < services.length; i++) list.appendChild(this.card(services[i]));
    frag.appendChild(list);

    this.body.textContent = '';
    this.body.appendChild(frag);
    if (focusKey != null) {
      var cands = this.body.querySelectorAll('summary[data-ss-key]');
      for (var j = 0; j < cands.length; j++) {
        if (cands[j].getAttribute('data-ss-key') === focusKey) { cands[j].focus(); break; }
      }
    }
  };

  Widget.prototype.card = function (s) {
    var status = st(s.status);
    var name = typeof s.name === 'string' ? s.name : String(s.name);
    var li = h('li', 'css-ss-card css-ss-s-' + status);
    li.setAttribute('data-status', status);

    // head: name, unit, badges, status
    var head = h('div', 'css-ss-head');
    head.appendChild(h('h3', 'css-ss-name', name));
    if (typeof s.unit === 'string' && s.unit) head.appendChild(h('span', 'css-ss-unit', s.unit));
    var crit = s.critical !== false;
    var cb = h('span', 'css-ss-badge' + (crit ? ' css-ss-badge-crit' : ''), crit ? 'Critical' : 'Non-critical');
    cb.setAttribute('title', crit ? 'Down here makes the whole host DOWN (CRITICAL)'
      : 'Down here only makes the host DEGRADED (WARNING)');
    head.appendChild(cb);
    if (s.heal_suspended === true) {
      var hb = h('span', 'css-ss-badge css-ss-badge-heal', '\u26A0 Auto-heal suspended');
      hb.setAttribute('title', 'Restart budget used up: no more automatic restarts until the service has been up ' +
        'for a while, or an operator runs: chatstack-status unmute ' + name);
      head.appendChild(hb);
    }
    var mu = parseT(s.muted_until);
    if (mu != null && mu > this.now()) {
      var mb = h('span', 'css-ss-badge css-ss-badge-mute');
      mb.appendChild(document.createTextNode('Muted \u00B7 ends '));
      mb.appendChild(timeEl(mu, 'rel'));
      mb.setAttribute('title', 'Maintenance: no healing and no alerts until ' + fmtAbs(mu));
      head.appendChild(mb);
    }
    head.appendChild(pill(status, 'css-ss-status'));
    li.appendChild(head);

    // stats
    var stats = h('dl', 'css-ss-stats');
    var addStat = function (label, value, cls) {
      var w = h('div');
      w.appendChild(h('dt', null, label));
      var dd = h('dd', cls);
      if (value && value.nodeType) dd.appendChild(value); else dd.textContent = value;
      w.appendChild(dd);
      stats.appendChild(w);
      return w;
    };
    addStat('Latency', fmtLat(bestLatency(s)));
    var since = parseT(s.since);
    var stateWord = { up: 'Up', degraded: 'Degraded', down: 'Down', unknown: 'Unknown' }[status];
    addStat(stateWord + ' for', since != null ? timeEl(since, 'for') : '\u2014');
    var cf = num(s.consecutive_failures) || 0;
    addStat('Failures in a row', String(cf), cf > 0 ? 'css-ss-bad' : null);
    var restarts = Array.isArray(s.restarts) ? s.restarts : [];
    var rs = addStat('Restarts (window)', String(restarts.length),
      s.heal_suspended === true ? 'css-ss-bad' : restarts.length ? 'css-ss-warnc' : null);
    if (restarts.length) {
      rs.setAttribute('title', restarts.map(function (r) {
        var t = parseT(r && r.at);
        return (t != null ? fmtAbs(t) : '?') + (r && r.ok === false ? ' \u2014 failed' : ' \u2014 ok');
      }).join('\n'));
    }
    var hist = (Array.isArray(s.history) ? s.history : []).filter(function (x) { return x && typeof x === 'object'; });
    if (hist.length) {
      var ok = 0, hc = { up: 0, degraded: 0, down: 0, unknown: 0 };
      hist.forEach(function (x) { hc[st(x.status)]++; });
      ok = hc.up + hc.degraded;
      var pct = (ok / hist.length) * 100;
      var up = addStat('Uptime', fmtPct(pct), pct < 90 ? 'css-ss-bad' : pct < 100 ? 'css-ss-warnc' : null);
      up.setAttribute('title', 'Share of the last ' + hist.length + ' results not down: ' + hc.up + ' up, ' +
        hc.degraded + ' degraded, ' + hc.down + ' down' + (hc.unknown ? ', ' + hc.unknown + ' unknown' : ''));
    }
    li.appendChild(stats);

    // history: latency sparkline over the strip of results, both oldest first, aligned
    var hw = h('div', 'css-ss-hist');
    if (hist.length) {
      var hh = h('div', 'css-ss-hhead');
      var hl = h('span');
      hl.appendChild(h('b', null, 'History'));
      var t0 = parseT(hist[0].at), t1 = parseT(hist[hist.length - 1].at);
      var spanTxt = t0 != null && t1 != null && hist.length > 1
        ? ' \u00B7 last ' + fmtDur((t1 - t0) * hist.length / (hist.length - 1)) : '';
      hl.appendChild(document.createTextNode(' \u00B7 ' + plural(hist.length, 'result', 'results') + spanTxt));
      hh.appendChild(hl);
      var lats = hist.map(function (x) { return num(x.latency_ms); }).filter(function (v) { return v != null; });
      if (lats.length) {
        hh.appendChild(h('span', null, 'latency ' + fmtLat(Math.min.apply(null, lats)) + ' \u2013 ' +
          fmtLat(Math.max.apply(null, lats))));
      }
      hw.appendChild(hh);
      var spark = sparkline(hist);
      if (spark) hw.appendChild(spark);
      var strip = h('div', 'css-ss-strip');
      var hcount = { up: 0, degraded: 0, down: 0, unknown: 0 };
      hist.forEach(function (x) {
        var xs = st(x.status);
        hcount[xs]++;
        var tk = h('span', 'css-ss-tick css-ss-t-' + xs);
        tk.setAttribute('data-status', xs);
        var t = parseT(x.at);
        var lat = num(x.latency_ms);
        tk.setAttribute('title', (t != null ? fmtClock(t) : '?') + ' \u2014 ' + STATES[xs] +
          (lat != null ? ' \u00B7 ' + fmtLat(lat) : ''));
        strip.appendChild(tk);
      });
      strip.setAttribute('role', 'img');
      strip.setAttribute('aria-label', 'History, oldest first: ' + hist.length + ' results, ' + hcount.up + ' up, ' +
        hcount.degraded + ' degraded, ' + hcount.down + ' down' + (hcount.unknown ? ', ' + hcount.unknown + ' unknown' : ''));
      hw.appendChild(strip);
      var axis = h('div', 'css-ss-axis');
      axis.setAttribute('aria-hidden', 'true');
      var first = parseT(hist[0].at);
      axis.appendChild(first != null ? timeEl(first, 'ago') : h('span', null, 'oldest'));
      var last = parseT(hist[hist.length - 1].at);
      axis.appendChild(last != null ? timeEl(last, 'ago') : h('span', null, 'latest'));
      hw.appendChild(axis);
    } else {
      hw.appendChild(h('p', 'css-ss-empty', 'No history yet.'));
    }
    li.appendChild(hw);

    // checks (expandable)
    var checks = (Array.isArray(s.checks) ? s.checks : []).filter(function (x) { return x && typeof x === 'object'; });
    var failing = checks.filter(function (x) { return st(x.status) !== 'up'; }).length;
    var det = h('details', 'css-ss-details');
    det.setAttribute('data-ss-key', name);
    if (this.open[name]) det.open = true;
    var sum = h('summary', null, plural(checks.length, 'check', 'checks') +
      (failing ? ' \u00B7 ' + failing + ' not up' : ' \u00B7 all up') +
      (restarts.length ? ' \u00B7 ' + plural(restarts.length, 'restart', 'restarts') : ''));
    sum.setAttribute('data-ss-key', name);
    det.appendChild(sum);
    var cl = h('ul', 'css-ss-checks');
    var now = this.now();
    checks.forEach(function (ck) {
      var row = h('li', 'css-ss-check css-ss-s-' + st(ck.status));
      row.appendChild(pill(ck.status));
      var tl = h('div', 'css-ss-ctarget');
      tl.appendChild(h('span', 'css-ss-ctype', ck.type != null ? String(ck.type) : 'check'));
      tl.appendChild(h('span', 'css-ss-mono', ck.target != null ? String(ck.target) : ''));
      row.appendChild(tl);
      var parts = [];
      if (ck.reason != null) parts.push('reason: ' + String(ck.reason));
      var cl2 = num(ck.latency_ms);
      if (cl2 != null) parts.push('latency: ' + fmtLat(cl2));
      var cert = certEl(ck, now);
      if (parts.length || cert) {
        var meta = h('div', 'css-ss-cmeta', parts.join(' \u00B7 '));
        if (cert) {
          if (parts.length) meta.appendChild(document.createTextNode(' \u00B7 '));
          meta.appendChild(cert);
        }
        row.appendChild(meta);
      }
      if (ck.detail != null && ck.detail !== '') row.appendChild(h('div', 'css-ss-cdetail', String(ck.detail)));
      cl.appendChild(row);
    });
    if (!checks.length) cl.appendChild(h('li', 'css-ss-empty', 'No checks.'));
    det.appendChild(cl);
    if (restarts.length) {
      var rw = h('div', 'css-ss-restarts');
      rw.appendChild(h('h4', null, 'Restarts in the heal window'));
      var rl = h('ul');
      restarts.forEach(function (r) {
        if (!r || typeof r !== 'object') return;
        var item = h('li');
        var t = parseT(r.at);
        if (t != null) item.appendChild(timeEl(t, 'ago'));
        item.appendChild(document.createTextNode(' \u2014 '));
        item.appendChild(h('b', r.ok === false ? 'css-ss-bad' : null, r.ok === false ? 'FAILED' : 'ok'));
        if (r.detail != null) item.appendChild(document.createTextNode(': '));
        if (r.detail != null) item.appendChild(h('span', 'css-ss-mono', String(r.detail)));
        rl.appendChild(item);
      });
      rw.appendChild(rl);
      det.appendChild(rw);
    }
    li.appendChild(det);
    return li;
  };

  Widget.prototype.tickClock = function () {
    var now = this.now();
    var els = this.root.querySelectorAll('[data-ss-t]');
    for (var i = 0; i < els.length; i++) {
      var t = Number(els[i].getAttribute('data-ss-t'));
      var mode = els[i].getAttribute('data-ss-mode');
      var txt = mode === 'for' ? fmtDur(now - t) : fmtRel(t, now);
      if (els[i].textContent !== txt) els[i].textContent = txt;
    }
  };

  Widget.prototype.announce = function (stale) {
    var d = this.data;
    var problem = this.error ? 'error' : stale ? 'stale' : null;
    var cur = { overall: d ? st(d.overall) : null, problem: problem, services: Object.create(null) };
    if (d) d.services.forEach(function (s) { if (s && typeof s === 'object') cur.services[String(s.name)] = st(s.status); });
    var prev = this.prev, msgs = [];
    if (!prev || prev.overall !== cur.overall) {
      if (cur.overall) msgs.push((prev && prev.overall ? 'Overall state changed to ' : 'Overall state: ') + STATES[cur.overall] + '.');
    }
    if (prev) {
      Object.keys(cur.services).forEach(function (n) {
        var was = prev.services[n];
        if (was && was !== cur.services[n]) msgs.push(n + ' is now ' + STATES[cur.services[n]] + ' (was ' + STATES[was] + ').');
      });
    } else if (d) {
      var bad = Object.keys(cur.services).filter(function (n) { return cur.services[n] !== 'up'; });
      if (bad.length) msgs.push(bad.map(function (n) { return n + ' ' + STATES[cur.services[n]]; }).join(', ') + '.');
    }
    if ((prev ? prev.problem : null) !== problem) {
      if (problem === 'error') msgs.push('Warning: cannot refresh the status: ' + this.error.msg + '.');
      else if (problem === 'stale') msgs.push('Warning: the status data is stale.');
      else if (prev && prev.problem) msgs.push('Status is fresh again.');
    }
    this.prev = cur;
    if (msgs.length) this.live.textContent = msgs.join(' ');
  };

  Widget.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.clock);
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
    document.removeEventListener('visibilitychange', this.onVisible);
  };

  var mounted = typeof WeakMap === 'function' ? new WeakMap() : null;

  function mount(target, opts) {
    var el = typeof target === 'string' ? document.querySelector(target) : target;
    if (!el || el.nodeType !== 1) throw new Error('SystemStatus.mount: no element for ' + String(target));
    if (mounted && mounted.has(el)) mounted.get(el).stop();
    var w = new Widget(el, opts || {});
    var handle = {
      element: el,
      stop: function () { w.stop(); },
      refresh: function () { if (!w.stopped) w.poll(); }
    };
    if (mounted) mounted.set(el, handle);
    return handle;
  }

  window.SystemStatus = Object.freeze({ mount: mount, version: '1' });
})();
