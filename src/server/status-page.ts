// The status page a node serves at `/`: every member (role, term, commit and applied index, lag,
// health), the leader and its history, and live charts (uPlot) of requests per second and mean
// latency drawn from this node's own metrics. It polls only its own node (/api/cluster), which
// probes the others with a short deadline, so a node that is down shows as unhealthy and the page
// keeps working.
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>quorumkv status</title>
<link rel="stylesheet" href="/ui/uplot.css">
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  table { border-collapse: collapse; margin: .8em 0; }
  th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
  th { background: #f3f3f3; }
  tr.unhealthy td { background: #fde2e2; }
  tr.healthy td.health { color: #176f2c; font-weight: 600; }
  tr.unhealthy td.health { color: #a40000; font-weight: 600; }
  #charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
  #error { color: #a40000; }
  .muted { color: #777; }
</style>
</head>
<body>
<h1>quorumkv cluster</h1>
<div>served by node <b id="self">?</b>; leader: <b id="leader">?</b> (term <span id="term">?</span>) <span id="error"></span></div>
<table id="nodes">
  <thead><tr><th>node</th><th>client address</th><th>role</th><th>term</th><th>commit</th><th>applied</th><th>lag</th><th>health</th></tr></thead>
  <tbody></tbody>
</table>
<div id="charts"><div id="ops-chart"></div><div id="latency-chart"></div></div>
<h2 style="font-size:1.1em">leader history <span class="muted">(as node <span id="self2">?</span> saw it)</span></h2>
<ol id="history"></ol>
<script src="/ui/uplot.js"></script>
<script>
(function () {
  var WINDOW = 120;
  var times = [], ops = [], latency = [];
  var last;
  function chart(el, title, label) {
    return new uPlot({ title: title, width: 460, height: 220, series: [{}, { label: label, stroke: '#2a6fdb', width: 2 }], axes: [{}, { size: 60 }] },
      [times, []], document.getElementById(el));
  }
  var opsChart = chart('ops-chart', 'requests per second (this node)', 'req/s');
  var latChart = chart('latency-chart', 'mean request latency, ms (this node)', 'ms');
  function cell(tr, text, cls) { var td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); }
  function show(v) { return v === undefined || v === null ? '-' : String(v); }
  function render(doc) {
    document.getElementById('self').textContent = doc.self;
    document.getElementById('self2').textContent = doc.self;
    document.getElementById('leader').textContent = doc.leaderId || 'none';
    document.getElementById('term').textContent = doc.term;
    var body = document.querySelector('#nodes tbody');
    body.textContent = '';
    doc.members.forEach(function (m) {
      var tr = document.createElement('tr');
      tr.className = m.healthy ? 'healthy' : 'unhealthy';
      tr.dataset.node = m.id;
      tr.dataset.health = m.healthy ? 'healthy' : 'unhealthy';
      tr.dataset.role = m.role || 'unreachable';
      cell(tr, m.id + (m.id === doc.leaderId ? ' (leader)' : ''));
      cell(tr, m.clientAddress || '-');
      cell(tr, m.role || 'unreachable');
      cell(tr, show(m.term)); cell(tr, show(m.commitIndex)); cell(tr, show(m.appliedIndex)); cell(tr, show(m.lag));
      cell(tr, m.healthy ? 'healthy' : 'unhealthy' + (m.error ? ': ' + m.error : ''), 'health');
      body.appendChild(tr);
    });
    var hist = document.getElementById('history');
    hist.textContent = '';
    doc.leaderHistory.slice().reverse().forEach(function (h) {
      var li = document.createElement('li');
      li.textContent = new Date(h.at).toLocaleTimeString() + ': ' + (h.leaderId ? 'leader ' + h.leaderId : 'no leader') + ' (term ' + h.term + ')';
      hist.appendChild(li);
    });
    if (last) {
      var dt = (doc.time - last.time) / 1000;
      var dn = doc.requests.requests - last.requests.requests;
      var ds = doc.requests.seconds - last.requests.seconds;
      times.push(doc.time / 1000); ops.push(dt > 0 ? dn / dt : 0); latency.push(dn > 0 ? (ds / dn) * 1000 : 0);
      if (times.length > WINDOW) { times.shift(); ops.shift(); latency.shift(); }
      opsChart.setData([times, ops]);
      latChart.setData([times, latency]);
    }
    last = doc;
  }
  function poll() {
    fetch('/api/cluster', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (doc) { document.getElementById('error').textContent = ''; render(doc); })
      .catch(function (e) { document.getElementById('error').textContent = 'this node did not answer: ' + e.message; })
      .finally(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
</script>
</body>
</html>
`;
