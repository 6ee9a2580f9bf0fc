/*!
 * chatstack-status widget: one global, SystemStatus.
 *
 *   <div id="system-status"></div>
 *   <script src="/static/js/status.js"></script>
 *   <script>SystemStatus.mount('#system-status', {url: '/api/status', refresh: 10});</script>
 *
 * mount(selectorOrElement, options) -> {stop(), refresh(), element}
 *   url             the status JSON (default '/api/status')
 *   refresh         seconds between status polls (default 10)
 *   credentials     fetch's credentials mode: 'same-origin' (default), 'include' (a page on
 *                   another origin sending the agent's basic-auth login; needs cors_origins)
 *                   or 'omit'
 *   history         true (default): the agent's history API next to `url` (…/api/uptime,
 *                   …/api/history, …/api/incidents, and …/api/resources when a service
 *                   reports `resources`, found by replacing /api/status);
 *                   false: none (the live view only); a string: that base URL instead
 *   historyRefresh  seconds between uptime/incident/latency refreshes (default 60, at least
 *                   `refresh`); the 90-day bars refresh every 5 × historyRefresh
 * The mount element receives a `systemstatus` CustomEvent after every poll
 * (detail: {overall, host, generatedAt, stale, error}).
 *
 * Above the services, a host panel: every disk/memory/load/pressure check as a bar (its
 * `values` and `thresholds`), the status's `system` block (up since the boot; its memory and
 * load where no check has them); none for a status with neither. A service's `resources`
 * (memory, CPU) show on its card, with 24 h charts when /api/resources answers (else none).
 *
 * History is asked for only once a status document carries per-service `uptime` (an agent
 * with a history store), so an older agent or `history_db: off` costs no extra request and
 * shows no history section. A history request that fails never touches the live view: it
 * leaves a quiet note and is retried at the next history refresh.
 *
 * No dependencies, no network but `url` and the history API beside it. Styles are injected
 * once and scoped under `.css-ss`; no element ids are used, so several widgets can share a
 * page. Text from the agent (names, targets, details, causes) is untrusted: it only ever
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
    '--ss-d-ok:#2da44e;--ss-d-minor:#d4a72c;--ss-d-major:#e16f24;--ss-d-bad:#cf222e;--ss-d-maint:#54aeff;--ss-d-nodata:#afb8c1;',
    '--ss-lat-max:#8250df;--ss-shadow:0 8px 24px rgba(31,35,40,.18);',
    'position:relative;color:var(--ss-fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;',
    'font-variant-numeric:tabular-nums;min-width:0}',
    '@media (prefers-color-scheme:dark){.css-ss{--ss-fg:#e6edf3;--ss-muted:#9198a1;--ss-border:#30363d;--ss-card:#151b23;--ss-subtle:#1c2128;',
    '--ss-up:#3fb950;--ss-up-bg:rgba(46,160,67,.16);--ss-degraded:#d29922;--ss-degraded-bg:rgba(187,128,9,.18);',
    '--ss-down:#ff7b72;--ss-down-bg:rgba(248,81,73,.16);--ss-unknown:#9198a1;--ss-unknown-bg:rgba(110,118,129,.18);',
    '--ss-t-up:#2ea043;--ss-t-degraded:#d29922;--ss-t-down:#f85149;--ss-t-unknown:#6e7681;',
    '--ss-warn-bg:rgba(187,128,9,.18);--ss-warn-fg:#f2cc60;--ss-warn-border:#9e6a03;--ss-spark:#4493f8;',
    '--ss-d-ok:#2ea043;--ss-d-minor:#d29922;--ss-d-major:#db6d28;--ss-d-bad:#f85149;--ss-d-maint:#388bfd;--ss-d-nodata:#768390;',
    '--ss-lat-max:#ab7df8;--ss-shadow:0 8px 24px rgba(1,4,9,.6)}}',
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
    '.css-ss-why{margin:10px 0 4px}',
    '.css-ss-why h4{margin:0;font-size:12px;font-weight:600;color:var(--ss-muted)}',
    '.css-ss-why .css-ss-checks{margin-top:4px}',
    /* the why: an open incident's diagnosis, and whether restarts helped */
    '.css-ss-diag{margin-top:10px;font-size:13px;border-top:1px solid var(--ss-border);padding-top:8px}',
    '.css-ss-diag h4{margin:0 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--ss-muted)}',
    '.css-ss-diag dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:0 0 6px}',
    '.css-ss-diag dt{color:var(--ss-muted)}',
    '.css-ss-diag dd{margin:0;overflow-wrap:anywhere}',
    '.css-ss-journal{margin:4px 0 0;max-height:11em;overflow:auto;white-space:pre;padding:6px 8px;border:1px solid var(--ss-border);border-radius:4px;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}',
    '.css-ss-outcome{font-weight:600}',
    '.css-ss-o-still_down{color:var(--ss-bad,#c62828)}',
    '.css-ss-o-pending{color:var(--ss-muted)}',
    '.css-ss-why{margin:10px 0 4px}',
    '.css-ss-why h4{margin:0;font-size:12px;font-weight:600;color:var(--ss-muted)}',
    '.css-ss-why .css-ss-checks{margin-top:4px}',
    '.css-ss-restarts{margin-top:10px;font-size:13px}',
    '.css-ss-restarts h4{margin:0 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--ss-muted)}',
    '.css-ss-restarts li{padding:2px 0;overflow-wrap:anywhere}',
    '.css-ss-nodata{padding:28px 16px;text-align:center;color:var(--ss-muted);border:1px dashed var(--ss-border);border-radius:10px}',
    /* history: uptime windows, 90-day bar, 24 h latency, incidents */
    '.css-ss-hnote{margin:10px 0 0;font-size:13px;color:var(--ss-muted)}',
    '.css-ss-hnote::before{content:"\u2139\uFE0E ";font-weight:700}',
    /* two columns (uptime and the 90 days | 24 h latency) where the card is wide enough */
    '.css-ss-hblock{margin-top:12px;display:flex;flex-wrap:wrap;gap:12px 28px}',
    '.css-ss-hleft{flex:1 1 420px;min-width:0;display:grid;gap:12px;align-content:start}',
    '.css-ss-hright{flex:1 1 280px;min-width:0;display:flex;flex-direction:column}',
    '.css-ss-uptime{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:6px}',
    '.css-ss-uwin{min-width:0;padding:5px 8px 6px;border-radius:8px;background:var(--ss-subtle)}',
    '.css-ss-ulabel{display:block;font-size:12px;color:var(--ss-muted);white-space:nowrap;overflow:hidden;text-overflow:ellipsis}',
    '.css-ss-uval{display:block;font-size:15px;font-weight:650;white-space:nowrap}',
    '.css-ss-u-warn{color:var(--ss-degraded)}.css-ss-u-bad{color:var(--ss-down)}.css-ss-u-none{color:var(--ss-muted);font-weight:500}',
    '.css-ss-bar{display:flex;gap:1px;height:28px;touch-action:pan-y;cursor:default}',
    '.css-ss-day{flex:1 1 0;min-width:0;border-radius:1px;background:var(--ss-d-ok)}',
    '.css-ss-day:focus{outline:none}',
    '.css-ss-day:focus-visible,.css-ss-day.css-ss-on{box-shadow:0 0 0 2px var(--ss-fg);position:relative;z-index:1}',
    '.css-ss-d-minor{background:var(--ss-d-minor)}.css-ss-d-major{background:var(--ss-d-major)}.css-ss-d-bad{background:var(--ss-d-bad)}',
    '.css-ss-d-maint{background:repeating-linear-gradient(-45deg,rgba(255,255,255,.4) 0 2px,transparent 2px 4px) var(--ss-d-maint)}',
    '.css-ss-d-nodata{align-self:center;height:30%;background:var(--ss-d-nodata)}',
    '.css-ss-legend{display:flex;flex-wrap:wrap;gap:4px 12px;margin-top:10px;font-size:12px;color:var(--ss-muted)}',
    '.css-ss-legend span{display:inline-flex;align-items:center;gap:5px;white-space:nowrap}',
    '.css-ss-legend i{display:inline-block;width:9px;height:14px;border-radius:1px}',
    '.css-ss-legend i.css-ss-d-nodata{height:5px}',
    '.css-ss-latency{flex:1 1 auto;display:flex;flex-direction:column}',
    '.css-ss-lat{position:absolute;top:0;left:0;display:block;width:100%;height:100%;overflow:visible}',
    '.css-ss-latwrap{position:relative;flex:1 1 auto;min-height:56px}',
    '.css-ss-latwrap .css-ss-yscale{position:absolute;left:2px;top:-2px;font-size:11px;line-height:1;color:var(--ss-muted);',
    'background:var(--ss-card);padding:0 3px 1px 0;pointer-events:none}',
    '.css-ss-key{display:inline-block;width:14px;height:0;margin-right:4px;vertical-align:middle;border-top:2px solid var(--ss-spark)}',
    '.css-ss-key-max{border-top:1.5px dashed var(--ss-lat-max)}',
    '.css-ss-tip{position:absolute;z-index:20;top:0;left:0;width:max-content;max-width:min(360px,100%);padding:9px 11px;',
    'border:1px solid var(--ss-border);border-radius:8px;background:var(--ss-card);color:var(--ss-fg);box-shadow:var(--ss-shadow);',
    'font-size:13px;line-height:1.4;pointer-events:none}',
    '.css-ss-tip[hidden]{display:none}',
    '.css-ss-tip-h{font-weight:700}',
    '.css-ss-tip-u{margin:2px 0 4px;font-size:15px;font-weight:700}',
    '.css-ss-tip dl{display:grid;grid-template-columns:auto auto;justify-content:start;gap:0 14px;margin:0}',
    '.css-ss-tip dt{color:var(--ss-muted)}.css-ss-tip dd{margin:0;font-weight:600}',
    '.css-ss-tip ul{margin-top:6px;padding-top:5px;border-top:1px solid var(--ss-border)}',
    '.css-ss-tip li{padding:1px 0;overflow-wrap:anywhere}',
    '.css-ss-tip-cause{display:block;color:var(--ss-muted);font-size:12px}',
    '.css-ss-inc{margin-top:20px}',
    '.css-ss-inc-h{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:2px 12px;margin-bottom:8px}',
    '.css-ss-inc-h h3{font-size:16px;font-weight:650}',
    '.css-ss-inc-h span{font-size:13px;color:var(--ss-muted)}',
    '.css-ss-incs{display:grid;gap:8px}',
    '.css-ss-incident{position:relative;padding:10px 12px 10px 18px;border:1px solid var(--ss-border);border-radius:10px;background:var(--ss-card);',
    'overflow:hidden;--ss-c:var(--ss-unknown)}',
    '.css-ss-incident::before{content:"";position:absolute;left:0;top:0;bottom:0;width:4px;background:var(--ss-c)}',
    '.css-ss-i-open{--ss-c:var(--ss-down)}.css-ss-i-muted{--ss-c:var(--ss-d-maint)}',
    '.css-ss-ihead{display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px}',
    '.css-ss-iname{font-weight:650;overflow-wrap:anywhere}',
    '.css-ss-badge-open{color:var(--ss-down);border-color:var(--ss-down);background:var(--ss-down-bg);font-weight:700}',
    '.css-ss-badge-maint{color:var(--ss-fg);border-color:var(--ss-d-maint)}',
    '.css-ss-iwhen{margin-top:2px;font-size:13px;color:var(--ss-muted)}',
    '.css-ss-iwhen b{color:var(--ss-fg);font-weight:600}',
    '.css-ss-icause{margin-top:6px;font-size:13px;overflow-wrap:anywhere}',
    '.css-ss-icause .css-ss-mono{font-weight:600}',
    '.css-ss-icause-reason{margin-left:8px;color:var(--ss-muted)}',
    '.css-ss-idetail{display:block;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;',
    'white-space:pre-wrap;color:var(--ss-muted)}',
    '.css-ss-iheal{margin-top:6px;font-size:13px;overflow-wrap:anywhere}',
    '.css-ss-iheal > span:first-child{color:var(--ss-muted)}',
    '.css-ss-more{margin-top:8px}',
    '.css-ss-more summary{cursor:pointer;color:var(--ss-muted);font-size:13px;font-weight:600;width:max-content;max-width:100%}',
    '.css-ss-more .css-ss-incs{margin-top:8px}',
    /* the host panel: resource checks as bars, the system block, up since */
    '.css-ss-s-info{--ss-c:var(--ss-spark);--ss-cb:var(--ss-subtle)}',
    '.css-ss-hostp{margin-top:14px;padding:12px 16px 14px;border:1px solid var(--ss-border);border-radius:10px;background:var(--ss-card)}',
    '.css-ss-hphead{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:2px 12px}',
    '.css-ss-hphead h3{font-size:16px;font-weight:650}',
    '.css-ss-upsince{font-size:13px;color:var(--ss-muted)}',
    '.css-ss-res-list{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,250px),1fr));gap:10px 18px;margin-top:8px}',
    '.css-ss-res{min-width:0}',
    '.css-ss-rtop{display:flex;align-items:baseline;justify-content:space-between;gap:8px}',
    '.css-ss-rtitle{min-width:0;font-weight:600;overflow-wrap:anywhere}',
    '.css-ss-rfig{flex:none;font-weight:700;color:var(--ss-c)}',
    '.css-ss-s-up .css-ss-rfig,.css-ss-s-info .css-ss-rfig{color:var(--ss-fg)}',
    '.css-ss-meter{position:relative;height:10px;margin:4px 0 3px;border-radius:5px;background:var(--ss-subtle);',
    'box-shadow:inset 0 0 0 1px var(--ss-border);overflow:hidden}',
    '.css-ss-mfill{position:absolute;left:0;top:0;bottom:0;border-radius:5px;background:var(--ss-c)}',
    '.css-ss-s-up .css-ss-mfill{background:var(--ss-t-up)}',
    '.css-ss-mmark{position:absolute;top:0;bottom:0;width:2px;margin-left:-1px;background:var(--ss-fg);opacity:.45}',
    '.css-ss-mmark-crit{opacity:.8}',
    '.css-ss-rmeta{font-size:12px;color:var(--ss-muted);overflow-wrap:anywhere}',
    '.css-ss-rflag{display:inline-block;padding:0 6px;border-radius:4px;font-weight:700;white-space:nowrap;border:1px solid currentColor}',
    '.css-ss-rflag-bad{color:var(--ss-down);background:var(--ss-down-bg)}',
    '.css-ss-rflag-forecast{color:var(--ss-fg)}',
    '.css-ss-rflag-warn{color:var(--ss-degraded);background:var(--ss-degraded-bg)}',
    '.css-ss-resblock{display:flex;flex-wrap:wrap;gap:8px 28px;margin-top:12px}',
    '.css-ss-rseries{flex:1 1 240px;min-width:0}',
    '.css-ss-rchart{display:block;width:100%;height:44px;overflow:visible}',
    '@media (max-width:520px){.css-ss-banner{padding:14px}.css-ss-btitle{font-size:18px}.css-ss-card{padding:12px 12px 10px 16px}',
    '.css-ss-stats{gap:8px 18px}.css-ss-strip{gap:2px}.css-ss-tick{border-radius:2px}',
    '.css-ss-head .css-ss-name{order:-2;flex:1 0 60%}.css-ss-head .css-ss-status{order:-1}',
    '.css-ss-uptime{gap:4px}.css-ss-uwin{padding:4px 6px 5px}.css-ss-uval{font-size:14px}.css-ss-incident{padding:9px 10px 9px 16px}}'
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
  // "Sun 03:00 CET": the weekday and time in the window's own time zone.
  function fmtWindow(t, tz) {
    var o = { weekday: 'short', hour: '2-digit', minute: '2-digit', hour12: false, timeZoneName: 'short' };
    try {
      if (typeof tz === 'string' && tz) o.timeZone = tz;
      return new Intl.DateTimeFormat('en-GB', o).format(new Date(t)).replace(',', '');
    } catch (e) {
      delete o.timeZone;
      return new Intl.DateTimeFormat('en-GB', o).format(new Date(t)).replace(',', '');
    }
  }
  function fmtHM(t) {
    return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
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

  // "last ping 5 min ago: <message>" for a push check (its job's report-in),
  // and when the next one is due; a failed or overdue ping in the bad colour.
  function pingEl(ck, now) {
    if (ck.type !== 'push') return null;
    var lp = ck.last_ping && typeof ck.last_ping === 'object' ? ck.last_ping : null;
    var at = lp ? parseT(lp.at) : null;
    var due = parseT(ck.ping_due_by);
    var text = at == null ? 'no ping yet'
      : 'last ping ' + fmtDur(Math.max(0, now - at)) + ' ago' + (lp.ok === false ? ' (failed)' : '');
    if (lp && lp.message != null && lp.message !== '') text += ': ' + String(lp.message);
    if (due != null) text += due < now ? ' \u00B7 overdue' : ' \u00B7 next due in ' + fmtDur(due - now);
    var bad = (lp && lp.ok === false) || (due != null && due < now);
    var e = h('span', 'css-ss-ping' + (bad ? ' css-ss-cert-bad' : ''), text);
    if (at != null) e.setAttribute('title', 'last ping ' + fmtAbs(at) + (due != null ? '; due by ' + fmtAbs(due) : ''));
    return e;
  }

  // A kind's `values` (disk, memory, load, pressure, …), read generically:
  // a name's suffix says its unit (_pct percent, _bytes bytes, _s seconds).
  function fmtBytes(b) {
    var u = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'], i = 0;
    while (Math.abs(b) >= 1000 && i < u.length - 1) { b /= 1000; i++; }
    return i === 0 ? Math.round(b) + ' B' : b.toFixed(1) + ' ' + u[i];
  }
  function fmtValue(name, v) {
    if (v == null) return 'n/a';
    if (/_pct$/.test(name)) return v.toFixed(1) + '%';
    if (/_bytes$/.test(name)) return fmtBytes(v);
    if (/_s$/.test(name)) return fmtDur(v * 1000);
    return Math.round(v) === v ? String(v) : v.toFixed(2);
  }
  function valueLabel(name) { return String(name).replace(/_(pct|bytes|s)$/, '').replace(/_/g, ' '); }
  function valuesEl(ck) {
    var vals = ck.values && typeof ck.values === 'object' && !Array.isArray(ck.values) ? ck.values : null;
    if (!vals) return null;
    // A figure the check has not got (no swap, no forecast yet) is left out, as in the text output.
    var parts = Object.keys(vals).filter(function (k) { return num(vals[k]) != null; })
      .map(function (k) { return valueLabel(k) + ' ' + fmtValue(k, num(vals[k])); });
    if (!parts.length) return null;
    var e = h('span', 'css-ss-values', parts.join(' \u00B7 '));
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

  // ---- history helpers (the agent's /api/uptime, /api/history, /api/incidents) ----
  var BAR_DAYS = 90;
  // How many days of history the agent keeps (the status document's
  // `history.retention_s`, its `retention.rollups`), or null when it does not say
  // (an older agent): then the dashboard asks for its usual 90 days.
  function keptDays(doc) {
    var hs = doc && doc.history && typeof doc.history === 'object' ? num(doc.history.retention_s) : null;
    return hs != null && hs > 0 ? hs / 86400 : null;
  }
  // The days the daily bar shows: 90, or fewer when the agent keeps less (0: no bar).
  function barDays(doc) {
    var k = keptDays(doc);
    return k == null ? BAR_DAYS : Math.min(BAR_DAYS, Math.floor(k));
  }
  var HISTORY_TIMEOUT_MS = 15000;
  var HISTORY_PARALLEL = 3; // the agent keeps 3 history readers; more would only queue there
  var UPTIME_WINDOWS = [
    ['24h', '24 hours', 'the last 24 hours'], ['7d', '7 days', 'the last 7 days'],
    ['30d', '30 days', 'the last 30 days'], ['90d', '90 days', 'the last 90 days']
  ];
  var CREDENTIALS = { 'same-origin': true, include: true, omit: true };
  var DAY_KINDS = [
    ['ok', '\u2265 99.9%'], ['minor', '99\u201399.9%'], ['major', '95\u201399%'], ['bad', '< 95%'],
    ['maint', 'maintenance'], ['nodata', 'no data']
  ];

  // The history API's base: the status URL without its /api/status (so a widget on an
  // agent's own page, behind a proxy prefix or on another origin finds it), or null.
  function historyBase(url, opt) {
    if (opt === false) return null;
    if (typeof opt === 'string') return opt.replace(/\/+$/, '');
    var m = /^([^?#]*?)\/api\/status\/?(?:[?#].*)?$/.exec(url);
    return m ? m[1] : null;
  }
  function windowDays(label) {
    var m = /^(\d+)([hd])$/.exec(label);
    return m ? Number(m[1]) / (m[2] === 'h' ? 24 : 1) : 0;
  }
  function fmtKept(days) {
    if (days >= 1) { var d = Math.floor(days * 10) / 10; return d + (d === 1 ? ' day' : ' days'); }
    return Math.max(1, Math.round(days * 24)) + ' h';
  }
  function objs(a) { return (Array.isArray(a) ? a : []).filter(function (x) { return x && typeof x === 'object'; }); }
  function secs(v) { var n = num(v); return n != null && n > 0 ? n : 0; }
  // Percent as the agent counts it: rounded down, so a minute down never shows as 100%.
  function fmtUptime(p) {
    if (p == null) return '\u2014';
    if (p >= 100) return '100%';
    return (Math.floor(p * 100 + 1e-6) / 100).toFixed(2) + '%';
  }
  function uptimeClass(p) {
    return p == null ? 'css-ss-u-none' : p >= 99.9 ? null : p >= 99 ? 'css-ss-u-warn' : 'css-ss-u-bad';
  }
  function dayKind(b) {
    var covered = secs(b.up_s) + secs(b.degraded_s) + secs(b.down_s) + secs(b.maintenance_s);
    if (!(covered > 0)) return 'nodata';
    var u = num(b.uptime);
    if (u == null) return 'maint';
    return u >= 99.9 ? 'ok' : u >= 99 ? 'minor' : u >= 95 ? 'major' : 'bad';
  }
  function isoDay(t) { return new Date(t).toISOString().slice(0, 10); }
  function utcClock(t) { return new Date(t).toISOString().slice(11, 16); }
  function fmtDay(t) {
    try {
      return new Date(t).toLocaleDateString([], { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
    } catch (e) { return isoDay(t); }
  }
  function fmtWhen(t) {
    try {
      return new Date(t).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
    } catch (e) { return new Date(t).toISOString().replace('T', ' ').slice(0, 16); }
  }
  function fmtSecs(s) { return fmtDur(secs(s) * 1000); }
  function restartsOf(inc) { return objs(inc.restarts); }
  // Whether a restart helped (`outcome`); null for agents before it existed.
  var OUTCOMES = { recovered: 'recovered', still_down: 'still down', pending: 'pending' };
  function outcomeEl(r) {
    var o = r && typeof r.outcome === 'string' && Object.prototype.hasOwnProperty.call(OUTCOMES, r.outcome)
      ? r.outcome : null;
    if (!o) return null;
    var b = h('span', 'css-ss-outcome css-ss-o-' + o, OUTCOMES[o]);
    b.setAttribute('data-outcome', o);
    return b;
  }
  // The open incident's diagnosis on a card that is not up: the unit's result and exit, the OOM
  // kill, the HTTP answer, the host, and the journal's last lines as text in a scrolling block.
  function diagnosisEl(s) {
    var inc = s.incident;
    var d = inc && typeof inc === 'object' ? inc.diagnosis : null;
    if (!d || typeof d !== 'object') return null;
    var box = h('div', 'css-ss-diag');
    box.setAttribute('data-ss-diagnosis', '');
    var when = parseT(d.captured_at);
    box.appendChild(h('h4', null, 'Why' + (when != null ? ' \u00B7 captured ' + fmtAbs(when) : '')));
    var dl = h('dl');
    var fact = function (k, v) { dl.appendChild(h('dt', null, k)); dl.appendChild(h('dd', 'css-ss-mono', v)); };
    var u = d.unit;
    if (u && typeof u === 'object') {
      fact('unit', String(u.name || '') + ': ' + String(u.active_state || '?') + ' (' + String(u.sub_state || '?') + ')');
      if (u.result) fact('result', String(u.result));
      if (num(u.exit_code) != null) fact('exit', 'code ' + num(u.exit_code));
      if (typeof u.exit_signal === 'string') fact('exit', 'killed by SIG' + u.exit_signal);
      if (num(u.n_restarts)) fact('systemd restarts', String(num(u.n_restarts)));
      if (num(u.memory_bytes) != null) fact('memory', fmtBytes(num(u.memory_bytes)));
    }
    if (d.oom_kill === true) fact('OOM', 'killed by the out-of-memory killer');
    var hp = d.http;
    if (hp && typeof hp === 'object') {
      fact('HTTP', (num(hp.status) != null ? String(num(hp.status)) : 'no answer') +
        (hp.body ? ': ' + String(hp.body) : ''));
    }
    var sy = d.system;
    if (sy && typeof sy === 'object') {
      var parts = [];
      if (num(sy.memory_used_pct) != null) parts.push('memory ' + num(sy.memory_used_pct) + '% used');
      if (num(sy.load_per_cpu) != null) parts.push('load ' + num(sy.load_per_cpu) + ' per CPU');
      if (Array.isArray(sy.disks_over_warn) && sy.disks_over_warn.length) parts.push('disks over warn: ' + sy.disks_over_warn.map(String).join(', '));
      if (parts.length) fact('host', parts.join(', '));
    }
    var top = objs(d.top_memory);
    if (top.length) {
      fact('top memory', top.map(function (p) {
        return String(p.name) + ' (' + String(p.pid) + ') ' + fmtBytes(num(p.rss_bytes));
      }).join(', '));
    }
    box.appendChild(dl);
    if (Array.isArray(d.journal)) {
      box.appendChild(h('div', null, 'Journal, last ' + plural(d.journal.length, 'line', 'lines') + ':'));
      // textContent only: a journal line is whatever the service printed.
      var pre = h('pre', 'css-ss-journal', d.journal.map(String).join('\n'));
      pre.setAttribute('tabindex', '0');
      box.appendChild(pre);
    } else if (d.journal_error != null) {
      box.appendChild(h('div', 'css-ss-empty', 'Journal: ' + String(d.journal_error)));
    }
    return box;
  }
  function restartsSummary(rs) {
    if (!rs.length) return 'no restart';
    var failed = rs.filter(function (r) { return r.ok === false; }).length;
    return plural(rs.length, 'restart', 'restarts') + ' (' + (rs.length - failed) + ' ok' +
      (failed ? ', ' + failed + ' failed' : '') + ')';
  }
  function causeSummary(c) {
    if (!c || typeof c !== 'object') return 'cause not recorded';
    var what = [c.type, c.target].filter(function (x) { return x != null && x !== ''; }).map(String).join(' ');
    return (what || 'a check') + ': ' + (c.reason != null ? String(c.reason) : 'down');
  }
  function incStart(inc) { return parseT(inc.started_at); }
  function incEnd(inc, now) { var e = parseT(inc.ended_at); return e != null ? e : now; }
  // 1, 2, 2.5, 5 × 10^k at or above v: a chart's top that reads well.
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    var e = Math.pow(10, Math.floor(Math.log(v) / Math.LN10)), f = v / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * e;
  }

  // Hourly latency over 24 h: the max as a dashed line over a faint area, the average solid;
  // a gap where an hour has no latency (down, or no data). Scale from 0, so shape is honest.
  function latencyChart(buckets, stepMs) {
    var pts = buckets.map(function (b) {
      var l = b.latency_ms && typeof b.latency_ms === 'object' ? b.latency_ms : {};
      var avg = num(l.avg), max = num(l.max);
      return { at: parseT(b.at), avg: avg, max: max != null ? max : avg };
    });
    var have = pts.filter(function (p) { return p.avg != null; });
    if (!have.length) return null;
    var peak = have.reduce(function (a, p) { return p.max > a.max ? p : a; }, have[0]);
    var top = niceCeil(peak.max);
    var W = 600, H = 56, n = pts.length, slot = W / n;
    var y = function (v) { return (H - 1 - (Math.min(v, top) / top) * (H - 4)).toFixed(1); };
    var s = svg('svg', {
      viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', focusable: 'false',
      'class': 'css-ss-lat', 'data-points': have.length, 'data-top': top
    });
    var avgs = have.map(function (p) { return p.avg; });
    var label = 'Latency by hour over the last 24 hours: average ' + fmtLat(Math.min.apply(null, avgs)) +
      ' to ' + fmtLat(Math.max.apply(null, avgs)) + ', highest ' + fmtLat(peak.max) +
      (peak.at != null ? ' (the hour from ' + fmtHM(peak.at) + ')' : '');
    s.setAttribute('aria-label', label);
    var title = svg('title', {});
    title.textContent = label;
    s.appendChild(title);
    s.appendChild(svg('line', { x1: 0, x2: W, y1: 0.5, y2: 0.5, stroke: 'var(--ss-border)', 'stroke-dasharray': '3 3', 'vector-effect': 'non-scaling-stroke' }));
    s.appendChild(svg('line', { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, stroke: 'var(--ss-border)', 'vector-effect': 'non-scaling-stroke' }));
    var segments = function (key) {
      var out = [], seg = [];
      pts.forEach(function (p, i) {
        if (p[key] == null) { if (seg.length) out.push(seg); seg = []; return; }
        seg.push([(i + 0.5) * slot, p[key]]);
      });
      if (seg.length) out.push(seg);
      return out.map(function (sg) {
        if (sg.length === 1) sg = [[sg[0][0] - slot * 0.35, sg[0][1]], [sg[0][0] + slot * 0.35, sg[0][1]]];
        return sg;
      });
    };
    var line = function (sg) { return sg.map(function (p) { return p[0].toFixed(1) + ',' + y(p[1]); }).join(' '); };
    segments('max').forEach(function (sg) {
      s.appendChild(svg('polygon', {
        points: sg[0][0].toFixed(1) + ',' + H + ' ' + line(sg) + ' ' + sg[sg.length - 1][0].toFixed(1) + ',' + H,
        fill: 'var(--ss-lat-max)', 'fill-opacity': 0.1
      }));
      s.appendChild(svg('polyline', {
        points: line(sg), fill: 'none', stroke: 'var(--ss-lat-max)', 'stroke-width': 1.25, 'stroke-dasharray': '4 3',
        'vector-effect': 'non-scaling-stroke', 'class': 'css-ss-lat-max'
      }));
    });
    segments('avg').forEach(function (sg) {
      s.appendChild(svg('polyline', {
        points: line(sg), fill: 'none', stroke: 'var(--ss-spark)', 'stroke-width': 1.75, 'stroke-linejoin': 'round',
        'stroke-linecap': 'round', 'vector-effect': 'non-scaling-stroke', 'class': 'css-ss-lat-avg'
      }));
    });
    // One transparent column per hour, for its figures on hover.
    pts.forEach(function (p, i) {
      if (p.at == null) return;
      var r = svg('rect', { x: (i * slot).toFixed(1), y: 0, width: slot.toFixed(1), height: H, fill: 'transparent', 'class': 'css-ss-lat-hour' });
      var tt = svg('title', {});
      tt.textContent = fmtHM(p.at) + '\u2013' + fmtHM(p.at + stepMs) + ': ' +
        (p.avg != null ? 'avg ' + fmtLat(p.avg) + ', max ' + fmtLat(p.max) : 'no latency (down or no data)');
      r.appendChild(tt);
      s.appendChild(r);
    });
    return { el: s, top: top, peak: peak.max, avgMin: Math.min.apply(null, avgs), avgMax: Math.max.apply(null, avgs) };
  }

  // GET one history document as JSON; rejects with an Error whose .status is the HTTP code.
  function getJson(url, credentials, ctrls) {
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    if (ctrl) ctrls.push(ctrl);
    var to = setTimeout(function () { if (ctrl) ctrl.abort(); }, HISTORY_TIMEOUT_MS);
    var done = function () {
      clearTimeout(to);
      var i = ctrls.indexOf(ctrl);
      if (i >= 0) ctrls.splice(i, 1);
    };
    return fetch(url, {
      cache: 'no-store', credentials: credentials, headers: { Accept: 'application/json' },
      signal: ctrl ? ctrl.signal : undefined
    }).then(function (res) {
      return res.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = null; }
        var isObj = body && typeof body === 'object' && !Array.isArray(body);
        var err = null;
        if (!res.ok) {
          err = new Error('HTTP ' + res.status + (isObj && body.error != null ? ': ' + String(body.error)
            : res.statusText ? ' ' + res.statusText : ''));
        } else if (!isObj) {
          err = new Error('HTTP ' + res.status + ' but the answer is not a JSON object');
        }
        if (err) { err.status = res.status; throw err; }
        return body;
      });
    }).then(function (b) { done(); return b; }, function (err) {
      done();
      if (err && err.name === 'AbortError') err = new Error('request timed out');
      else if (!err || err.status == null) {
        err = new Error('cannot reach the server (' + ((err && err.message) || 'network error') + ')');
      }
      throw err;
    });
  }

  // Runs the jobs (functions returning promises), at most `limit` at a time; never rejects.
  function runLimited(jobs, limit) {
    return new Promise(function (resolve) {
      var next = 0, running = 0;
      if (!jobs.length) { resolve(); return; }
      var start = function () {
        while (running < limit && next < jobs.length) {
          running++;
          Promise.resolve().then(jobs[next++]).then(null, function () {}).then(function () {
            running--;
            if (next >= jobs.length && running === 0) resolve(); else start();
          });
        }
      };
      start();
    });
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
    this.credentials = Object.prototype.hasOwnProperty.call(CREDENTIALS, opts.credentials)
      ? opts.credentials : 'same-origin';
    this.histOff = opts.history === false; // live view only, even the status's own uptime
    this.histBase = historyBase(this.url, opts.history == null ? true : opts.history);
    var hr = Number(opts.historyRefresh);
    this.histFastMs = Math.max(isFinite(hr) && hr > 0 ? hr * 1000 : 60000, this.refreshMs);
    this.histSlowMs = 5 * this.histFastMs;
    this.hist = {
      seen: false,        // the agent answered /api/uptime once: it keeps history
      busy: false,        // a history refresh is running
      state: null,        // null (not asked) | 'ok' | 'off' (404) | 'empty' (503) | 'error'
      error: null,        // why the last refresh failed
      nextAt: 0, slowAt: 0, okAt: null,
      uptime: null,       // name -> {"24h": {uptime, ...}, ...} from /api/uptime
      hours: Object.create(null), days: Object.create(null), // name -> history document
      errs: Object.create(null),                              // name -> why its history failed
      inc30: null, inc90: null, inc90Limit: 0, inc90Days: BAR_DAYS, incErr: null,
      res: null,          // name -> [[unix_s, memory_bytes, cpu_pct]] from /api/resources; null: none
      ctrls: []
    };
    this.cellInfo = Object.create(null); // data-ss-key of a day cell -> what its tooltip shows
    this.rove = Object.create(null);     // service -> the day its bar's tab stop is on
    this.tipKey = null;
    this.tipCell = null;
    this.hoverCell = null;

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
    // One tooltip per widget for the 90-day cells, outside the (dimmable) body; the cells'
    // aria-labels carry the same figures for screen readers.
    this.tip = h('div', 'css-ss-tip');
    this.tip.hidden = true;
    this.tip.setAttribute('aria-hidden', 'true');
    root.appendChild(this.warn);
    root.appendChild(this.body);
    root.appendChild(this.live);
    root.appendChild(this.tip);
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
    var isCell = function (t) { return !!(t && t.nodeType === 1 && t.classList.contains('css-ss-day')); };
    root.addEventListener('focusin', function (e) {
      if (isCell(e.target)) { self.rovingTo(e.target); self.showTip(e.target); }
    });
    root.addEventListener('focusout', function (e) {
      if (isCell(e.target) && !isCell(e.relatedTarget) && !self.hoverCell) self.hideTip();
    });
    root.addEventListener('mouseover', function (e) {
      if (isCell(e.target)) { self.hoverCell = e.target; self.showTip(e.target); }
    });
    root.addEventListener('mouseout', function (e) {
      if (!isCell(e.target) || isCell(e.relatedTarget)) return;
      self.hoverCell = null;
      var f = document.activeElement;
      if (isCell(f) && root.contains(f)) self.showTip(f); else self.hideTip();
    });
    // Touch and pen: the cell under the finger as it slides along the bar.
    var touch = function (e) {
      if (e.pointerType === 'mouse') return;
      var bar = e.target && e.target.closest ? e.target.closest('.css-ss-bar') : null;
      if (!bar) { if (e.type === 'pointerdown') self.hideTip(); return; }
      var r = bar.getBoundingClientRect();
      var c = document.elementFromPoint(Math.min(Math.max(e.clientX, r.left + 1), r.right - 1), r.top + r.height / 2);
      if (isCell(c) && bar.contains(c)) self.showTip(c);
    };
    root.addEventListener('pointerdown', touch);
    root.addEventListener('pointermove', touch);
    root.addEventListener('keydown', function (e) {
      var t = e.target;
      if (!isCell(t)) return;
      var to = null, cells = t.parentNode.children;
      if (e.key === 'ArrowLeft') to = t.previousElementSibling;
      else if (e.key === 'ArrowRight') to = t.nextElementSibling;
      else if (e.key === 'Home') to = cells[0];
      else if (e.key === 'End') to = cells[cells.length - 1];
      else if (e.key === 'Escape') { self.hideTip(); return; }
      else return;
      e.preventDefault();
      if (to) to.focus();
    });
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
      cache: 'no-store', credentials: this.credentials,
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
    this.maybeHistory();
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
    var focusKey = null, focusTag = null, ae = document.activeElement;
    if (ae && this.root.contains(ae) && ae.hasAttribute('data-ss-key')) {
      focusKey = ae.getAttribute('data-ss-key');
      focusTag = ae.tagName;
    }
    var tipKey = this.tip.hidden ? null : this.tipKey;
    this.cellInfo = Object.create(null);

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
    var note = this.historyNote();
    if (note) frag.appendChild(note);
    var host = this.hostPanel(d, services);
    if (host) frag.appendChild(host);

    // services
    if (!services.length) frag.appendChild(h('p', 'css-ss-nodata', 'No services configured.'));
    var list = h('ul', 'css-ss-list');
    for (var i = 0; i < services.length; i++) list.appendChild(this.card(services[i]));
    frag.appendChild(list);
    var inc = this.incidentsSection();
    if (inc) frag.appendChild(inc);

    this.body.textContent = '';
    this.body.appendChild(frag);
    var self = this;
    var byKey = function (key, tag) {
      var cands = self.body.querySelectorAll('[data-ss-key]');
      for (var j = 0; j < cands.length; j++) {
        if (cands[j].getAttribute('data-ss-key') === key && (!tag || cands[j].tagName === tag)) return cands[j];
      }
      return null;
    };
    this.tipCell = null;
    this.hoverCell = null;
    var again = tipKey != null ? byKey(tipKey, 'SPAN') : null;
    if (focusKey != null) {
      var f = byKey(focusKey, focusTag);
      if (f) f.focus();
    }
    if (again) this.showTip(again); else this.hideTip();
  };

  // One check: its state, type and target, reason and latency, and its detail.
  function checkRow(ck, now) {
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
    var extras = [certEl(ck, now), pingEl(ck, now), valuesEl(ck)].filter(function (x) { return x; });
    if (parts.length || extras.length) {
      var meta = h('div', 'css-ss-cmeta', parts.join(' \u00B7 '));
      extras.forEach(function (x, i) {
        if (parts.length || i) meta.appendChild(document.createTextNode(' \u00B7 '));
        meta.appendChild(x);
      });
      row.appendChild(meta);
    }
    if (ck.detail != null && ck.detail !== '') row.appendChild(h('div', 'css-ss-cdetail', String(ck.detail)));
    return row;
  }

  // A card that is not up says why at once: its checks that are not up, with their reasons
  // and details, unfolded (the full list stays in the <details> below).
  Widget.prototype.whyBlock = function (s, status) {
    if (status === 'up') return null;
    var bad = (Array.isArray(s.checks) ? s.checks : []).filter(function (x) {
      return x && typeof x === 'object' && st(x.status) !== 'up';
    });
    if (!bad.length) return null;
    var box = h('div', 'css-ss-why');
    box.setAttribute('data-ss-why', '');
    box.appendChild(h('h4', null, bad.length === 1 ? 'Why: the check that is not up'
      : 'Why: the ' + bad.length + ' checks that are not up'));
    var ul = h('ul', 'css-ss-checks');
    var now = this.now();
    bad.forEach(function (ck) { ul.appendChild(checkRow(ck, now)); });
    box.appendChild(ul);
    return box;
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
      var reason = typeof s.mute_reason === 'string' && s.mute_reason ? s.mute_reason : null;
      if (reason) mb.appendChild(h('span', 'css-ss-mreason', ' \u00B7 ' + reason));
      mb.setAttribute('title', 'Maintenance: no healing and no alerts until ' + fmtAbs(mu) +
        (reason ? '\nReason: ' + reason : ''));
      head.appendChild(mb);
    }
    // A maintenance window open now, else the next one ("maintenance Sun 03:00 CET, in 2 days").
    var mw = s.maintenance && typeof s.maintenance === 'object' ? s.maintenance : null;
    var mwUntil = mw ? parseT(mw.until) : null;
    if (mwUntil != null && mwUntil > this.now()) {
      var wb = h('span', 'css-ss-badge css-ss-badge-mute css-ss-maint-open');
      wb.appendChild(document.createTextNode('Maintenance ' + String(mw.name || '') + ' \u00B7 ends '));
      wb.appendChild(timeEl(mwUntil, 'rel'));
      wb.setAttribute('title', 'Maintenance window: no healing and no alerts until ' + fmtAbs(mwUntil));
      head.appendChild(wb);
    } else {
      var nw = s.next_maintenance && typeof s.next_maintenance === 'object' ? s.next_maintenance : null;
      var nwStart = nw ? parseT(nw.start) : null;
      if (nwStart != null && nwStart > this.now()) {
        var nb = h('span', 'css-ss-badge css-ss-maint-next');
        nb.appendChild(document.createTextNode('maintenance ' + fmtWindow(nwStart, nw.timezone) + ', '));
        nb.appendChild(timeEl(nwStart, 'rel'));
        nb.setAttribute('title', 'Next maintenance window ' + String(nw.name || '') + ': ' + fmtAbs(nwStart) +
          (parseT(nw.end) != null ? ' to ' + fmtAbs(parseT(nw.end)) : ''));
        head.appendChild(nb);
      }
    }
    head.appendChild(pill(status, 'css-ss-status'));
    li.appendChild(head);
    var why = this.whyBlock(s, status);
    if (why) li.appendChild(why);

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
    resourceStats(s, addStat);
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
    var hb = this.historyBlock(name, s);
    if (hb) li.appendChild(hb);
    var rb = this.histOff ? null : this.resourceBlock(name);
    if (rb) li.appendChild(rb);
    if (status !== 'up') {
      var dg = diagnosisEl(s);
      if (dg) li.appendChild(dg);
    }

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
    checks.forEach(function (ck) { cl.appendChild(checkRow(ck, now)); });
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
        var oc = outcomeEl(r);
        if (oc) { item.appendChild(document.createTextNode(', ')); item.appendChild(oc); }
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

  // ---- the host: resource checks and the system block, above the services ----

  var RESOURCE_KINDS = { disk: 'Disk', memory: 'Memory', load: 'Load', pressure: 'Pressure' };
  function vals(ck) {
    return ck.values && typeof ck.values === 'object' && !Array.isArray(ck.values) ? ck.values : {};
  }
  function pct1(v) { return v == null ? 'n/a' : (Math.round(v * 10) / 10).toFixed(1) + '%'; }
  // "full in 3 days", "full in 5 hours", "full in 20 minutes": a forecast in words.
  function fullIn(s) {
    var m = Math.max(1, Math.round(s / 60));
    if (m < 90) return 'full in ' + plural(m, 'minute', 'minutes');
    var hrs = Math.round(s / 3600);
    if (hrs < 48) return 'full in ' + plural(hrs, 'hour', 'hours');
    return 'full in ' + plural(Math.round(s / 86400), 'day', 'days');
  }
  // A bar from 0 to `top` filled to `v`, with the check's warn and crit marked on it. The
  // fill takes the colour of the row's status class; the figures are in its aria attributes.
  function meter(v, top, warn, crit, label) {
    var m = h('div', 'css-ss-meter');
    m.setAttribute('role', 'meter');
    m.setAttribute('aria-label', label);
    m.setAttribute('aria-valuemin', '0');
    m.setAttribute('aria-valuemax', String(top));
    if (v != null) m.setAttribute('aria-valuenow', String(Math.min(v, top)));
    var at = function (x) { return Math.max(0, Math.min(100, (x / top) * 100)).toFixed(1) + '%'; };
    var fill = h('span', 'css-ss-mfill');
    fill.style.width = v != null ? at(v) : '0%';
    m.appendChild(fill);
    [['warn', warn], ['crit', crit]].forEach(function (t) {
      if (t[1] == null || t[1] > top) return;
      var k = h('span', 'css-ss-mmark css-ss-mmark-' + t[0]);
      k.style.left = at(t[1]);
      k.setAttribute('title', t[0] + ' ' + t[1]);
      m.appendChild(k);
    });
    return m;
  }
  // One tile of the host panel: a title, the figure, a bar, a line of facts, and flags.
  function hostTile(kind, title, status, figure, bar, facts, flags) {
    var li = h('li', 'css-ss-res css-ss-s-' + status);
    li.setAttribute('data-kind', kind);
    li.setAttribute('data-status', status);
    var top = h('div', 'css-ss-rtop');
    var tt = h('span', 'css-ss-rtitle', title.trim());
    // The state in words for a screen reader; the eye has the bar's and figure's colour.
    if (status !== 'info') tt.appendChild(h('span', 'css-ss-sr', ' (' + STATES[status] + ')'));
    top.appendChild(tt);
    top.appendChild(h('span', 'css-ss-rfig', figure));
    li.appendChild(top);
    if (bar) { bar.setAttribute('aria-valuetext', figure); li.appendChild(bar); }
    var meta = h('div', 'css-ss-rmeta', facts.filter(function (x) { return x; }).join(' \u00B7 '));
    flags.forEach(function (f) {
      if (!f) return;
      var b = h('span', 'css-ss-rflag css-ss-rflag-' + f[0], f[1]);
      meta.appendChild(document.createTextNode(' '));
      meta.appendChild(b);
    });
    li.appendChild(meta);
    return li;
  }
  // A resource check as a tile: disk, memory, load or pressure, from its `values` and
  // `thresholds` (the service and detail in its title); null for any other kind.
  function resourceTile(ck, service) {
    var kind = String(ck.type), v = vals(ck), status = ck.status === 'info' ? 'info' : st(ck.status);
    var th = ck.thresholds && typeof ck.thresholds === 'object' ? ck.thresholds : {};
    var warn = num(th.warn), crit = num(th.crit);
    var target = ck.target != null ? String(ck.target) : '';
    var tile;
    if (kind === 'disk') {
      var used = num(v.used_pct), total = num(v.total_bytes), avail = num(v.available_bytes);
      var inodes = num(v.inodes_used_pct), full = num(v.full_in_s);
      tile = hostTile('disk', 'Disk ' + target, status, pct1(used), meter(used, 100, warn, crit, 'Disk ' + target + ' used, percent'), [
        avail != null && total != null ? fmtBytes(avail) + ' free of ' + fmtBytes(total) : null,
        inodes != null && (inodes >= 90 || ck.reason === 'disk_inodes') ? 'inodes ' + pct1(inodes) + ' used' : null
      ], [
        ck.reason === 'read_only' ? ['bad', 'read-only'] : null,
        full != null ? ['forecast' + (ck.reason === 'disk_filling' ? ' css-ss-rflag-warn' : ''), fullIn(full)] : null
      ]);
    } else if (kind === 'memory') {
      var mu = num(v.used_pct), sw = num(v.swap_used_pct);
      tile = hostTile('memory', 'Memory', status, pct1(mu), meter(mu, 100, warn, crit, 'Memory used, percent'), [
        num(v.available_bytes) != null && num(v.total_bytes) != null
          ? fmtBytes(num(v.available_bytes)) + ' available of ' + fmtBytes(num(v.total_bytes)) : null,
        sw != null ? 'swap ' + pct1(sw) + ' used' : null
      ], [ck.reason === 'swap_used' ? ['warn', 'swapping'] : null]);
    } else if (kind === 'load') {
      var pc = num(v.per_cpu), l = [num(v.load1), num(v.load5), num(v.load15)];
      var ltop = Math.max(crit != null ? crit * 1.25 : 2, pc || 0);
      tile = hostTile('load', 'Load ' + target, status, pc != null ? pc.toFixed(2) + ' per CPU' : 'n/a',
        meter(pc, ltop, warn, crit, 'Load per CPU'), [
          'load ' + l.map(function (x) { return x != null ? x.toFixed(2) : '\u2013'; }).join(' / ') + ' (1, 5, 15 min)',
          num(v.cpus) != null ? plural(num(v.cpus), 'CPU', 'CPUs') : null
        ], []);
    } else if (kind === 'pressure') {
      var a60 = num(v.avg60);
      tile = hostTile('pressure', 'Pressure ' + target, status, pct1(a60), meter(a60, 100, warn, crit, 'Pressure ' + target + ', avg60 percent'), [
        'avg10 ' + pct1(num(v.avg10)), 'avg60 ' + pct1(a60), 'avg300 ' + pct1(num(v.avg300))
      ], []);
    } else {
      return null;
    }
    tile.setAttribute('title', (status === 'info' ? 'from the system block (no ' + kind + ' check)'
      : service + ': ' + kind + ' ' + target + ' \u2014 ' + STATES[status]) +
      (ck.detail != null && ck.detail !== '' ? '\n' + String(ck.detail) : ''));
    return tile;
  }
  // The panel above the services: every resource check of every service as a tile, the system
  // block's memory and load where no check reports them, and "up since" the boot. Null when the
  // status has neither (an agent before host resources): nothing changes on such a page.
  Widget.prototype.hostPanel = function (d, services) {
    var sys = d.system && typeof d.system === 'object' && !Array.isArray(d.system) ? d.system : null;
    var tiles = [], have = {};
    services.forEach(function (s) {
      objs(s.checks).forEach(function (ck) {
        if (!Object.prototype.hasOwnProperty.call(RESOURCE_KINDS, ck.type)) return;
        var t = resourceTile(ck, String(s.name));
        if (t) { tiles.push(t); have[ck.type] = true; }
      });
    });
    if (sys) {
      var mem = sys.memory && typeof sys.memory === 'object' ? sys.memory : null;
      if (!have.memory && mem && num(mem.used_pct) != null) {
        tiles.push(resourceTile({ type: 'memory', status: 'info', values: {
          used_pct: mem.used_pct, total_bytes: mem.total_bytes, available_bytes: mem.available_bytes,
          swap_used_pct: num(mem.swap_total_bytes) ? mem.swap_used_pct : null
        } }, 'system'));
      }
      var ld = Array.isArray(sys.load) ? sys.load.map(num) : [];
      var cpus = num(sys.cpus);
      if (!have.load && ld.length === 3 && ld[0] != null) {
        tiles.push(resourceTile({ type: 'load', target: '', status: 'info', values: {
          load1: ld[0], load5: ld[1], load15: ld[2], cpus: cpus,
          per_cpu: cpus ? Math.round((ld[1] != null ? ld[1] : ld[0]) / cpus * 100) / 100 : null
        } }, 'system'));
      }
    }
    var booted = sys ? parseT(sys.booted_at) : null;
    if (!tiles.length && booted == null) return null;
    var box = h('section', 'css-ss-hostp');
    box.setAttribute('aria-label', 'Host resources');
    var head = h('div', 'css-ss-hphead');
    head.appendChild(h('h3', null, 'Host'));
    if (booted != null) {
      var up = h('span', 'css-ss-upsince');
      up.appendChild(document.createTextNode('up since ' + fmtWhen(booted) + ' ('));
      up.appendChild(timeEl(booted, 'for'));
      up.appendChild(document.createTextNode(')'));
      up.setAttribute('title', 'booted ' + fmtAbs(booted) + (sys.boot_id != null ? '\nboot id ' + String(sys.boot_id) : ''));
      head.appendChild(up);
    }
    box.appendChild(head);
    if (tiles.length) {
      var ul = h('ul', 'css-ss-res-list');
      tiles.forEach(function (t) { ul.appendChild(t); });
      box.appendChild(ul);
    }
    return box;
  };

  // ---- per service: memory and CPU now (status `resources`) and over 24 h (/api/resources) ----

  // One series of a service's 24 h resources as a small line chart over [t0, t1] (ms), scaled
  // from 0 like the latency chart; a gap where the agent had no figure. Null under 2 points.
  function resourceChart(rows, col, t0, t1, fmt, what, spanText) {
    var pts = rows.map(function (r) { return [num(r[0]), num(r[col])]; })
      .filter(function (p) { return p[0] != null; });
    var have = pts.filter(function (p) { return p[1] != null; });
    if (have.length < 2) return null;
    var peak = have.reduce(function (a, p) { return p[1] > a[1] ? p : a; }, have[0]);
    var top = niceCeil(peak[1]);
    var W = 600, H = 44, span = Math.max(1, t1 - t0);
    var x = function (t) { return (Math.max(0, Math.min(1, (t * 1000 - t0) / span)) * W).toFixed(1); };
    var y = function (v) { return (H - 1 - (Math.min(v, top) / top) * (H - 4)).toFixed(1); };
    var label = what + ' over the ' + spanText + ': now ' + fmt(have[have.length - 1][1]) + ', peak ' + fmt(peak[1]) +
      ' (' + fmtWhen(peak[0] * 1000) + ')';
    var s = svg('svg', {
      viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', focusable: 'false',
      'class': 'css-ss-rchart', 'data-points': have.length, 'data-peak': peak[1]
    });
    s.setAttribute('aria-label', label);
    var title = svg('title', {});
    title.textContent = label;
    s.appendChild(title);
    s.appendChild(svg('line', { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, stroke: 'var(--ss-border)', 'vector-effect': 'non-scaling-stroke' }));
    var segs = [], seg = [];
    pts.forEach(function (p) {
      if (p[1] == null) { if (seg.length) segs.push(seg); seg = []; return; }
      seg.push(x(p[0]) + ',' + y(p[1]));
    });
    if (seg.length) segs.push(seg);
    segs.forEach(function (sg) {
      if (sg.length === 1) sg = [sg[0], sg[0]];
      s.appendChild(svg('polyline', {
        points: sg.join(' '), fill: 'none', stroke: 'var(--ss-spark)', 'stroke-width': 1.5, 'stroke-linejoin': 'round',
        'vector-effect': 'non-scaling-stroke', 'class': 'css-ss-rline'
      }));
    });
    var wrap = h('div', 'css-ss-rseries');
    var cap = h('div', 'css-ss-hhead');
    var b = h('span');
    b.appendChild(h('b', null, what));
    b.appendChild(document.createTextNode(' \u00B7 ' + spanText.replace(/^last 24 hours$/, '24 h')));
    cap.appendChild(b);
    cap.appendChild(h('span', null, 'peak ' + fmt(peak[1])));
    wrap.appendChild(cap);
    wrap.appendChild(s);
    return wrap;
  }
  function fmtCpu(v) { return v == null ? '\u2014' : (v >= 10 ? Math.round(v) : Math.round(v * 10) / 10) + '%'; }
  function fmtMem(v) { return v == null ? '\u2014' : fmtBytes(v); }
  // The card's "Memory" and "CPU" figures from the status's `resources` (a service with a unit).
  function resourceStats(s, addStat) {
    var r = s.resources && typeof s.resources === 'object' && !Array.isArray(s.resources) ? s.resources : null;
    if (!r) return;
    var mem = num(r.memory_bytes), cpu = num(r.cpu_pct), tasks = num(r.tasks);
    var m = addStat('Memory', fmtMem(mem));
    m.setAttribute('data-ss-res', 'memory');
    if (tasks != null) m.setAttribute('title', plural(tasks, 'task', 'tasks') + ' in the unit');
    addStat('CPU', fmtCpu(cpu)).setAttribute('data-ss-res', 'cpu');
  }
  // The 24 h memory and CPU charts of one service, when /api/resources answered with its rows.
  Widget.prototype.resourceBlock = function (name) {
    var H = this.hist, all = H.res;
    var rows = all && Object.prototype.hasOwnProperty.call(all, name) && Array.isArray(all[name])
      ? all[name].filter(Array.isArray) : [];
    if (rows.length < 2) return null;
    // The last 24 h, or since the first figure when the agent has less (a fresh one has
    // minutes: drawn across the width, and said so, rather than as a dot at the right end).
    var t1 = this.now(), t0 = t1 - 86400000;
    var first = rows.reduce(function (a, r) {
      var t = num(r[0]);
      return t != null && (num(r[1]) != null || num(r[2]) != null) ? Math.min(a, t * 1000) : a;
    }, Infinity);
    if (first > t0 + 3600000 && first < t1) t0 = first;
    var span = t1 - t0 >= 86400000 - 3600000 ? 'last 24 hours' : 'last ' + fmtDur(t1 - t0);
    var charts = [resourceChart(rows, 1, t0, t1, fmtMem, 'Memory', span), resourceChart(rows, 2, t0, t1, fmtCpu, 'CPU', span)]
      .filter(function (c) { return c; });
    if (!charts.length) return null;
    var box = h('div', 'css-ss-resblock');
    box.setAttribute('data-ss-resources', '');
    charts.forEach(function (c) { box.appendChild(c); });
    return box;
  };

  // ---- history: fetching ----

  // Called after every good status poll: a history refresh when one is due. History is only
  // asked for once a status document shows an agent that keeps it (per-service `uptime`).
  Widget.prototype.maybeHistory = function () {
    var H = this.hist, d = this.data;
    if (this.histBase == null || this.stopped || H.busy || document.hidden || !d) return;
    if (!H.seen && !d.services.some(function (s) { return s && s.uptime && typeof s.uptime === 'object'; })) return;
    var now = Date.now();
    if (now < H.nextAt) return;
    this.refreshHistory(now);
  };

  // One refresh: /api/uptime (all services at once), then the incidents and each service's
  // 24 h hourly history, and every fifth time also each service's 90 daily buckets and 90 days
  // of incidents (for the bars' tooltips): at most 2 × services + 3 requests.
  Widget.prototype.refreshHistory = function (now) {
    var self = this, H = this.hist, base = this.histBase, cred = this.credentials;
    var get = function (path) { return getJson(base + path, cred, H.ctrls); };
    var names = [];
    this.data.services.forEach(function (s) {
      var n = s && typeof s === 'object' && s.name != null ? String(s.name) : null;
      if (n != null && names.indexOf(n) < 0) names.push(n);
    });
    var slow = now >= H.slowAt;
    H.busy = true;
    get('/api/uptime').then(function (up) {
      if (!Array.isArray(up.services)) throw new Error('the /api/uptime answer has no "services" list');
      var map = Object.create(null);
      objs(up.services).forEach(function (s) {
        if (s.name != null && s.windows && typeof s.windows === 'object') map[String(s.name)] = s.windows;
      });
      H.seen = true;
      H.uptime = map;
      var slowFailed = false;
      var hist = function (name, since, step, into) {
        return function () {
          return get('/api/history?service=' + encodeURIComponent(name) + '&since=' + since + '&step=' + step)
            .then(function (doc) {
              if (!Array.isArray(doc.buckets)) throw new Error('no "buckets" in the answer');
              into[name] = doc;
              delete H.errs[name + (into === H.days ? 'days' : 'hours')];
            }, function (err) {
              if (into === H.days) slowFailed = true;
              H.errs[name + (into === H.days ? 'days' : 'hours')] = err.message;
              if (err.status === 404) delete into[name]; // the history does not know this service
            });
        };
      };
      var incidents = function (since, limit, slowJob) {
        return function () {
          return get('/api/incidents?since=' + since + '&limit=' + limit).then(function (doc) {
            if (!Array.isArray(doc.incidents)) throw new Error('no "incidents" in the answer');
            if (slowJob) { H.inc90 = objs(doc.incidents); H.inc90Limit = limit; H.inc90Days = days; } else { H.inc30 = objs(doc.incidents); H.incErr = null; }
          }, function (err) {
            if (slowJob) slowFailed = true; else H.incErr = err.message;
          });
        };
      };
      // Never more than the agent keeps: it answers 400 to a longer `since`.
      var days = barDays(self.data), kept = keptDays(self.data);
      var recent = kept != null && kept < 1 ? Math.max(1, Math.floor(kept * 24)) + 'h' : '24h';
      var jobs = [incidents('30d', 50, false)];
      names.forEach(function (n) { jobs.push(hist(n, recent, '1h', H.hours)); });
      // Memory and CPU over 24 h, for services that report them: an agent without the
      // endpoint (404) or any failure just shows no chart, and no note.
      if (self.data.services.some(function (s) { return s && s.resources && typeof s.resources === 'object'; })) {
        jobs.push(function () {
          return get('/api/resources?since=' + recent).then(function (doc) {
            var sv = doc.services;
            H.res = sv && typeof sv === 'object' && !Array.isArray(sv) ? sv : null;
          }, function () { H.res = null; });
        });
      }
      if (slow && days > 0) {
        jobs.push(incidents(days + 'd', 1000, true));
        names.forEach(function (n) { jobs.push(hist(n, days + 'd', '1d', H.days)); });
      }
      return runLimited(jobs, HISTORY_PARALLEL).then(function () {
        H.state = 'ok';
        H.error = null;
        H.okAt = Date.now();
        if (slow && !slowFailed) H.slowAt = now + self.histSlowMs;
        H.nextAt = now + self.histFastMs;
      });
    }).then(null, function (err) {
      var code = err && err.status;
      H.error = (err && err.message) || 'error';
      if (code === 404) {
        // This server keeps no history (history_db: off, or a proxy that only passes
        // /api/status): nothing to show, and only a rare look whether that changed.
        H.state = 'off';
        H.uptime = null;
        H.hours = Object.create(null);
        H.days = Object.create(null);
        H.inc30 = H.inc90 = null;
        H.res = null;
        H.nextAt = now + self.histSlowMs;
      } else {
        H.state = code === 503 ? 'empty' : 'error';
        H.nextAt = now + self.histFastMs;
      }
    }).then(function () {
      H.busy = false;
      if (self.stopped || !self.data) return;
      self.renderBody(self.data, self.isStale());
      self.tickClock();
    });
  };

  // The quiet line under the banner when history is expected but not there.
  Widget.prototype.historyNote = function () {
    var H = this.hist;
    if (H.state !== 'empty' && H.state !== 'error') return null;
    var p = h('p', 'css-ss-hnote');
    p.setAttribute('role', 'note');
    var retry = ' Retrying every ' + fmtDur(this.histFastMs) + '; the live status is not affected.';
    if (H.state === 'empty') {
      p.textContent = 'No history recorded yet (' + H.error + '): uptime, the daily bars and incidents ' +
        'appear after the first recorded check cycle.' + retry;
    } else if (H.okAt != null) {
      p.appendChild(document.createTextNode('History could not be refreshed (' + H.error + '); showing what was loaded '));
      p.appendChild(timeEl(H.okAt + this.offset, 'ago'));
      p.appendChild(document.createTextNode('.' + retry));
    } else {
      p.textContent = 'History unavailable (' + H.error + ').' + retry;
    }
    return p;
  };

  // ---- history: per service ----

  Widget.prototype.historyBlock = function (name, s) {
    var H = this.hist;
    if (this.histOff) return null;
    var win = H.state !== 'off' && H.uptime ? H.uptime[name] : null;
    var live = s.uptime && typeof s.uptime === 'object' ? s.uptime : null;
    if (!win && !live) return null;
    var block = h('div', 'css-ss-hblock');

    // uptime per window: /api/uptime's figures, else the three the status document carries
    var uhead = h('div', 'css-ss-hhead');
    var ul = h('span');
    ul.appendChild(h('b', null, 'Uptime'));
    ul.appendChild(document.createTextNode(' \u00B7 time-weighted'));
    ul.setAttribute('title', 'Share of the monitored time the service was up or degraded; time muted for ' +
      'maintenance and time without results (the monitor was not running) count neither way');
    uhead.appendChild(ul);
    var kept = keptDays(this.data);
    var windows = UPTIME_WINDOWS.filter(function (w) { return kept == null || windowDays(w[0]) <= kept + 1e-9; });
    if (windows.length < UPTIME_WINDOWS.length) {
      var why = h('span', 'css-ss-kept', 'history kept ' + fmtKept(kept));
      why.setAttribute('title', 'The agent keeps ' + fmtKept(kept) + ' of history (retention.rollups in its ' +
        'config): longer windows are not shown');
      uhead.appendChild(why);
    }
    var uw = h('div', 'css-ss-uptimes');
    uw.appendChild(uhead);
    var row = h('div', 'css-ss-uptime');
    row.setAttribute('role', 'group');
    row.setAttribute('aria-label', 'Uptime of ' + name);
    windows.forEach(function (w) {
      var f = win && win[w[0]] && typeof win[w[0]] === 'object' ? win[w[0]] : null;
      var p = f ? num(f.uptime) : live ? num(live[w[0]]) : null;
      var cell = h('div', 'css-ss-uwin');
      cell.setAttribute('data-window', w[0]);
      cell.appendChild(h('span', 'css-ss-ulabel', w[1]));
      var v = h('span', 'css-ss-uval' + (uptimeClass(p) ? ' ' + uptimeClass(p) : ''), fmtUptime(p));
      cell.appendChild(v);
      var tip = 'Uptime over ' + w[2] + ': ' + (p == null ? 'no data' : fmtUptime(p));
      if (f) {
        tip += '\nup ' + fmtSecs(f.up_s) + ', degraded ' + fmtSecs(f.degraded_s) + ', down ' + fmtSecs(f.down_s) +
          '\nmaintenance ' + fmtSecs(f.maintenance_s) + ', no data ' + fmtSecs(f.nodata_s) +
          (num(f.coverage) != null ? ' (monitored ' + (Math.floor(f.coverage * 1000) / 10) + '% of the time)' : '');
      } else if (!live || !(w[0] in live)) {
        tip = 'Uptime over ' + w[2] + ': not loaded';
      }
      cell.setAttribute('title', tip);
      row.appendChild(cell);
    });
    uw.appendChild(row);
    var left = h('div', 'css-ss-hleft'), right = h('div', 'css-ss-hright');
    left.appendChild(uw);
    block.appendChild(left);

    var days = H.state === 'ok' || H.state === 'error' ? H.days[name] : null;
    if (days && objs(days.buckets).length) left.appendChild(this.dayBar(name, days));
    else if (H.errs[name + 'days'] && H.state === 'ok') {
      left.appendChild(h('p', 'css-ss-empty', 'Daily history unavailable: ' + H.errs[name + 'days'] + '.'));
    }
    var hours = H.state === 'ok' || H.state === 'error' ? H.hours[name] : null;
    if (hours) right.appendChild(this.latencyBlock(hours));
    else if (H.errs[name + 'hours'] && H.state === 'ok') {
      right.appendChild(h('p', 'css-ss-empty', '24 h latency unavailable: ' + H.errs[name + 'hours'] + '.'));
    }
    if (right.firstChild) block.appendChild(right);
    return block;
  };

  // Incidents known for a service: the 90-day list (rarer) merged with the 30-day one (fresher).
  Widget.prototype.incidentsOf = function (name) {
    var H = this.hist, byId = Object.create(null), out = [];
    [H.inc90, H.inc30].forEach(function (list) {
      objs(list).forEach(function (i) {
        if (String(i.service) !== name) return;
        var k = i.id != null ? String(i.id) : String(i.started_at);
        byId[k] = i;
      });
    });
    for (var k in byId) out.push(byId[k]);
    return out;
  };

  // From when on every incident is loaded: the lists ask for 30 and 90 days, and one that
  // came back full (its limit reached) is only complete back to its oldest incident.
  Widget.prototype.incidentsKnownFrom = function (now) {
    var H = this.hist;
    var from = function (list, limit, days) {
      if (!list) return Infinity;
      if (list.length < limit) return now - days * 86400000;
      return Math.min.apply(null, list.map(incStart).filter(function (t) { return t != null; }).concat([now]));
    };
    return Math.min(from(H.inc90, H.inc90Limit, H.inc90Days), from(H.inc30, 50, 30));
  };

  Widget.prototype.dayBar = function (name, doc) {
    var self = this;
    var step = (num(doc.step_s) || 86400) * 1000;
    var buckets = objs(doc.buckets).filter(function (b) { return parseT(b.at) != null; })
      .slice(-Math.max(1, barDays(this.data)));
    var incs = this.incidentsOf(name), now = this.now();
    var knownFrom = this.incidentsKnownFrom(now);
    var wrap = h('div', 'css-ss-days');
    var head = h('div', 'css-ss-hhead');
    var hl = h('span');
    hl.appendChild(h('b', null, 'Last ' + plural(buckets.length, 'day', 'days')));
    hl.appendChild(document.createTextNode(' \u00B7 daily uptime (UTC days)'));
    head.appendChild(hl);
    var kinds = { nodata: 0 }, inWindow = 0;
    var t0 = buckets.length ? parseT(buckets[0].at) : now;
    incs.forEach(function (i) { if (incEnd(i, now) > t0) inWindow++; });
    var right = [];
    if (t0 >= knownFrom) right.push(plural(inWindow, 'incident', 'incidents'));
    var bar = h('div', 'css-ss-bar');
    var rove = this.rove[name], roveCell = null;
    buckets.forEach(function (b) {
      var t = parseT(b.at), kind = dayKind(b), day = isoDay(t), u = num(b.uptime);
      kinds[kind] = (kinds[kind] || 0) + 1;
      var dayIncs = incs.filter(function (i) {
        var a = incStart(i);
        return a != null && a < t + step && incEnd(i, now) > t;
      }).sort(function (a, b2) { return incStart(a) - incStart(b2); });
      var cell = h('span', 'css-ss-day css-ss-d-' + kind);
      var key = 'day\u001f' + name + '\u001f' + day;
      cell.setAttribute('data-ss-key', key);
      cell.setAttribute('data-day', day);
      cell.setAttribute('data-kind', kind);
      cell.setAttribute('data-uptime', u != null ? String(u) : '');
      cell.setAttribute('data-incidents', String(dayIncs.length));
      cell.setAttribute('role', 'img');
      cell.tabIndex = -1;
      var label = fmtDay(t) + ': ' + (kind === 'nodata' ? 'no data' : u == null ? 'maintenance only'
        : fmtUptime(u) + ' uptime') + (secs(b.down_s) ? ', down ' + fmtSecs(b.down_s) : '') +
        (secs(b.nodata_s) && kind !== 'nodata' ? ', no data ' + fmtSecs(b.nodata_s) : '') +
        (dayIncs.length ? ', ' + plural(dayIncs.length, 'incident', 'incidents') : '');
      cell.setAttribute('aria-label', label);
      self.cellInfo[key] = { t: t, step: step, b: b, kind: kind, incs: dayIncs, known: t >= knownFrom };
      if (day === rove) roveCell = cell;
      bar.appendChild(cell);
    });
    if (!roveCell) roveCell = bar.lastChild;
    if (roveCell) roveCell.tabIndex = 0;
    if (kinds.nodata) right.push(plural(kinds.nodata, 'day', 'days') + ' without data');
    if (right.length) head.appendChild(h('span', null, right.join(' \u00B7 ')));
    wrap.appendChild(head);
    bar.setAttribute('role', 'group');
    bar.setAttribute('aria-label', 'Daily uptime of ' + name + ', oldest first: ' + buckets.length + ' days, ' +
      DAY_KINDS.filter(function (k) { return kinds[k[0]]; }).map(function (k) {
        return kinds[k[0]] + ' ' + k[1];
      }).join(', ') + '. Arrow keys move between days.');
    wrap.appendChild(bar);
    var axis = h('div', 'css-ss-axis');
    axis.setAttribute('aria-hidden', 'true');
    axis.appendChild(h('span', null, buckets.length + ' days ago'));
    axis.appendChild(h('span', null, 'today'));
    wrap.appendChild(axis);
    return wrap;
  };

  Widget.prototype.latencyBlock = function (doc) {
    var step = (num(doc.step_s) || 3600) * 1000;
    var buckets = objs(doc.buckets).filter(function (b) { return parseT(b.at) != null; });
    var wrap = h('div', 'css-ss-latency');
    var head = h('div', 'css-ss-hhead');
    var hl = h('span');
    hl.appendChild(h('b', null, 'Latency'));
    hl.appendChild(document.createTextNode(' \u00B7 last 24 h, per ' + fmtDur(step)));
    head.appendChild(hl);
    var chart = latencyChart(buckets, step);
    if (!chart) {
      wrap.appendChild(head);
      wrap.appendChild(h('p', 'css-ss-empty', 'No latency recorded in the last 24 h.'));
      return wrap;
    }
    var keys = h('span');
    keys.appendChild(h('span', 'css-ss-key'));
    keys.appendChild(document.createTextNode('avg ' + fmtLat(chart.avgMin) + '\u2013' + fmtLat(chart.avgMax) + '  '));
    keys.appendChild(h('span', 'css-ss-key css-ss-key-max'));
    keys.appendChild(document.createTextNode('max ' + fmtLat(chart.peak)));
    head.appendChild(keys);
    wrap.appendChild(head);
    var box = h('div', 'css-ss-latwrap');
    box.appendChild(chart.el);
    var scale = h('span', 'css-ss-yscale', chart.top >= 1 && chart.top < 1000 && chart.top % 1 === 0
      ? chart.top + ' ms' : fmtLat(chart.top));
    scale.setAttribute('aria-hidden', 'true');
    box.appendChild(scale);
    wrap.appendChild(box);
    var axis = h('div', 'css-ss-axis');
    axis.setAttribute('aria-hidden', 'true');
    axis.appendChild(h('span', null, '24 h ago'));
    axis.appendChild(h('span', null, 'now'));
    wrap.appendChild(axis);
    return wrap;
  };

  // ---- history: the incidents of the last 30 days ----

  Widget.prototype.incidentsSection = function () {
    var H = this.hist;
    if (H.state !== 'ok' && H.state !== 'error') return null;
    if (!H.inc30 && !H.incErr) return null;
    var sec = h('section', 'css-ss-inc');
    var head = h('div', 'css-ss-inc-h');
    head.appendChild(h('h3', null, 'Incidents \u00B7 last 30 days'));
    var list = objs(H.inc30);
    var open = list.filter(function (i) { return i.ended_at == null; }).length;
    if (H.inc30) {
      head.appendChild(h('span', null, (list.length >= 50 ? 'the latest ' : '') + plural(list.length, 'incident', 'incidents') +
        (open ? ' \u00B7 ' + open + ' ongoing' : '')));
    }
    sec.appendChild(head);
    if (H.incErr) sec.appendChild(h('p', 'css-ss-hnote', 'Incidents could not be loaded (' + H.incErr + ').'));
    if (H.inc30 && !list.length) sec.appendChild(h('p', 'css-ss-empty', 'No incidents in the last 30 days.'));
    var FIRST = 8;
    var ul = h('ul', 'css-ss-incs');
    for (var i = 0; i < Math.min(FIRST, list.length); i++) ul.appendChild(this.incidentItem(list[i]));
    if (list.length) sec.appendChild(ul);
    if (list.length > FIRST) {
      var more = h('details', 'css-ss-more');
      more.setAttribute('data-ss-key', '\u001fincidents');
      if (this.open['\u001fincidents']) more.open = true;
      var sum = h('summary', null, plural(list.length - FIRST, 'older incident', 'older incidents'));
      sum.setAttribute('data-ss-key', '\u001fincidents');
      more.appendChild(sum);
      var ul2 = h('ul', 'css-ss-incs');
      for (var j = FIRST; j < list.length; j++) ul2.appendChild(this.incidentItem(list[j]));
      more.appendChild(ul2);
      sec.appendChild(more);
    }
    var legend = h('div', 'css-ss-legend');
    legend.setAttribute('aria-label', 'Colours of the daily bars');
    DAY_KINDS.forEach(function (k) {
      var it = h('span');
      var sw = h('i', 'css-ss-d-' + k[0]);
      sw.setAttribute('aria-hidden', 'true');
      it.appendChild(sw);
      it.appendChild(document.createTextNode(k[1]));
      legend.appendChild(it);
    });
    sec.appendChild(legend);
    return sec;
  };

  Widget.prototype.incidentItem = function (inc) {
    var start = incStart(inc), end = parseT(inc.ended_at), ongoing = inc.ended_at == null;
    var muted = inc.muted === true;
    var li = h('li', 'css-ss-incident' + (ongoing ? ' css-ss-i-open' : '') + (muted ? ' css-ss-i-muted' : ''));
    li.setAttribute('data-id', inc.id != null ? String(inc.id) : '');
    li.setAttribute('data-open', String(ongoing));
    li.setAttribute('data-muted', String(muted));
    var head = h('div', 'css-ss-ihead');
    head.appendChild(h('span', 'css-ss-iname', inc.service != null ? String(inc.service) : '?'));
    head.appendChild(h('span', 'css-ss-badge' + (ongoing ? ' css-ss-badge-open' : ''), ongoing ? 'Ongoing' : 'Resolved'));
    if (muted) {
      var mb = h('span', 'css-ss-badge css-ss-badge-maint', 'Muted (maintenance)');
      mb.setAttribute('title', 'Began while the service was muted: no healing, no alert, and not counted against uptime');
      head.appendChild(mb);
    }
    head.appendChild(h('span', 'css-ss-badge', inc.alerted === true ? 'Alert sent' : 'No alert'));
    li.appendChild(head);

    var when = h('div', 'css-ss-iwhen');
    if (start != null) {
      when.appendChild(document.createTextNode('Began '));
      var b = h('b', null, fmtWhen(start));
      b.setAttribute('title', fmtAbs(start));
      when.appendChild(b);
      when.appendChild(document.createTextNode(' ('));
      when.appendChild(timeEl(start, 'ago', 'css-ss-istart'));
      when.appendChild(document.createTextNode(') \u00B7 '));
    }
    if (ongoing) {
      when.appendChild(document.createTextNode('down for '));
      if (start != null) when.appendChild(timeEl(start, 'for'));
      else when.appendChild(document.createTextNode(fmtSecs(inc.duration_s)));
      when.appendChild(document.createTextNode(', still open'));
    } else {
      when.appendChild(document.createTextNode('lasted '));
      var dur = h('b', 'css-ss-iduration', fmtSecs(inc.duration_s));
      if (end != null) dur.setAttribute('title', 'ended ' + fmtAbs(end));
      when.appendChild(dur);
    }
    li.appendChild(when);

    var c = inc.cause && typeof inc.cause === 'object' ? inc.cause : null;
    var cause = h('div', 'css-ss-icause');
    if (c) {
      cause.appendChild(h('span', 'css-ss-ctype css-ss-icause-type', c.type != null ? String(c.type) : 'check'));
      cause.appendChild(h('span', 'css-ss-mono css-ss-icause-target', c.target != null ? String(c.target) : ''));
      if (c.reason != null) cause.appendChild(h('span', 'css-ss-icause-reason', 'reason: ' + String(c.reason)));
      if (c.detail != null && c.detail !== '') cause.appendChild(h('span', 'css-ss-idetail css-ss-icause-detail', String(c.detail)));
    } else {
      cause.appendChild(h('span', 'css-ss-empty', 'Cause not recorded.'));
    }
    li.appendChild(cause);

    var rs = restartsOf(inc);
    var heal = h('div', 'css-ss-iheal');
    heal.appendChild(h('span', null, 'Healing: '));
    heal.appendChild(document.createTextNode(rs.length ? plural(rs.length, 'restart', 'restarts') + ' \u2014 ' : 'no restart'));
    rs.forEach(function (r, k) {
      if (k) heal.appendChild(document.createTextNode(', '));
      var item = h('span', 'css-ss-irestart');
      item.setAttribute('data-ok', String(r.ok !== false));
      var t = parseT(r.at);
      if (t != null) item.appendChild(document.createTextNode(fmtHM(t) + ' '));
      item.appendChild(h('b', r.ok === false ? 'css-ss-bad' : null, r.ok === false ? 'FAILED' : 'ok'));
      var oc = outcomeEl(r);
      if (oc) { item.appendChild(document.createTextNode(' ')); item.appendChild(oc); }
      if (t != null) item.setAttribute('title', 'systemctl restart at ' + fmtAbs(t));
      heal.appendChild(item);
    });
    li.appendChild(heal);
    return li;
  };

  // ---- history: the day tooltip ----

  Widget.prototype.rovingTo = function (cell) {
    var bar = cell.parentNode;
    for (var c = bar.firstElementChild; c; c = c.nextElementSibling) c.tabIndex = c === cell ? 0 : -1;
    var parts = cell.getAttribute('data-ss-key').split('\u001f');
    this.rove[parts[1]] = parts[2];
  };

  Widget.prototype.showTip = function (cell) {
    var key = cell.getAttribute('data-ss-key'), info = this.cellInfo[key];
    if (!info || !this.root.contains(cell)) { this.hideTip(); return; }
    if (this.tipCell && this.tipCell !== cell) this.tipCell.classList.remove('css-ss-on');
    this.tipCell = cell;
    this.tipKey = key;
    cell.classList.add('css-ss-on');
    var tip = this.tip, b = info.b, u = num(b.uptime);
    tip.textContent = '';
    tip.setAttribute('data-day', cell.getAttribute('data-day'));
    tip.setAttribute('data-service', key.split('\u001f')[1]);
    tip.appendChild(h('div', 'css-ss-tip-h', fmtDay(info.t) + ' (UTC)'));
    tip.appendChild(h('div', 'css-ss-tip-u' + (uptimeClass(u) ? ' ' + uptimeClass(u) : ''),
      info.kind === 'nodata' ? 'No data: the monitor recorded nothing' : u == null ? 'Maintenance only'
        : fmtUptime(u) + ' uptime'));
    var dl = h('dl');
    [['Down', b.down_s], ['Degraded', b.degraded_s], ['Maintenance', b.maintenance_s], ['No data', b.nodata_s],
      ['Up', b.up_s]].forEach(function (r) {
      dl.appendChild(h('dt', null, r[0]));
      dl.appendChild(h('dd', null, fmtSecs(r[1])));
    });
    tip.appendChild(dl);
    var ul = h('ul');
    if (!info.known && !info.incs.length) ul.appendChild(h('li', 'css-ss-empty', 'Incidents of this day not loaded.'));
    else if (!info.incs.length) ul.appendChild(h('li', 'css-ss-empty', 'No incidents.'));
    var now = this.now(), MAX = 5;
    info.incs.slice(0, MAX).forEach(function (i) {
      var a = incStart(i), e = parseT(i.ended_at);
      var li = h('li', 'css-ss-tip-inc');
      li.appendChild(h('b', null, utcClock(a) + '\u2013' + (e != null ? utcClock(e) : 'now') + ' UTC'));
      li.appendChild(document.createTextNode(' \u00B7 ' + fmtDur(incEnd(i, now) - a) + (e == null ? ', ongoing' : '') +
        ' \u00B7 ' + restartsSummary(restartsOf(i)) + (i.muted === true ? ' \u00B7 muted' : '')));
      li.appendChild(h('span', 'css-ss-tip-cause', causeSummary(i.cause)));
      ul.appendChild(li);
    });
    if (info.incs.length > MAX) ul.appendChild(h('li', 'css-ss-empty', '\u2026 and ' + (info.incs.length - MAX) + ' more'));
    tip.appendChild(ul);
    tip.hidden = false;
    // Above the cell, centred on it, kept inside the widget; below it when the top is off-screen.
    var rr = this.root.getBoundingClientRect(), cr = cell.getBoundingClientRect();
    var tw = tip.offsetWidth, th = tip.offsetHeight;
    var left = Math.max(0, Math.min(cr.left + cr.width / 2 - rr.left - tw / 2, rr.width - tw));
    var top = cr.top - th - 8 >= 0 ? cr.top - rr.top - th - 8 : cr.bottom - rr.top + 8;
    tip.style.left = Math.round(left) + 'px';
    tip.style.top = Math.round(top) + 'px';
  };

  Widget.prototype.hideTip = function () {
    if (this.tipCell) this.tipCell.classList.remove('css-ss-on');
    this.tipCell = null;
    this.tipKey = null;
    this.tip.hidden = true;
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
    this.hist.ctrls.slice().forEach(function (c) { if (c) c.abort(); });
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
