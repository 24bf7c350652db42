// The studio page: plain JavaScript, no framework, no CDN (works offline). Every request goes to
// the worker's own server with the token cookie the page got when it was opened with ?token=.
'use strict';
const $ = s => document.querySelector(s);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else if (k.startsWith('on')) e[k] = v;
    else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};
const enc = encodeURIComponent;

async function api(path, opts = {}) {
  const r = await fetch(path, opts);
  let j = null;
  try { j = await r.json(); } catch (e) { j = {error: r.status + ' ' + r.statusText}; }
  if (!r.ok) { const err = new Error(j.error || r.statusText); err.body = j; err.status = r.status; throw err; }
  return j;
}
const postJSON = (path, body) => api(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
  body: JSON.stringify(body)});
function say(node, text, kind) { node.textContent = text; node.className = 'msg' + (kind ? ' ' + kind : ''); }

// --- jobs: poll until finished, drawing a progress bar -----------------------------------------
function showProgress(bar, job) {
  bar.hidden = false;
  const f = job.fraction == null ? 0 : job.fraction;
  bar.firstElementChild.style.width = Math.round(f * 100) + '%';
  bar.lastElementChild.textContent = job.message + (job.fraction != null ? ' · ' + Math.round(f * 100) + '%' : '');
  bar.dataset.state = job.state;
}
async function watchJob(job, bar) {
  while (true) {
    if (bar) showProgress(bar, job);
    if (job.state !== 'running') return job;
    await new Promise(r => setTimeout(r, 300));
    job = (await api('/api/jobs/' + job.id)).job;
  }
}

// --- tabs --------------------------------------------------------------------------------------
const loaders = {};
function showTab() {
  const name = (location.hash || '#characters').slice(1).split('/')[0];
  for (const s of document.querySelectorAll('.tab')) s.classList.toggle('on', s.id === name);
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.dataset.tab === name);
  if (loaders[name]) loaders[name]();
}
window.addEventListener('hashchange', showTab);

// --- characters --------------------------------------------------------------------------------
let characters = [];
async function loadCharacters() {
  const j = await api('/api/characters');
  $('#charFolder').textContent = j.folder;
  characters = j.characters;
  const grid = $('#charGrid'); grid.textContent = '';
  for (const c of characters) grid.append(charCard(c));
  fillCharacterSelect();
  document.body.dataset.characters = String(characters.length);
}
loaders.characters = loadCharacters;

function charCard(c) {
  const verdictText = {usable: 'usable', warnings: 'usable, with warnings', no: 'cannot be used'}[c.verdict];
  const card = el('div', {class: 'card char', 'data-file': c.file, 'data-verdict': c.verdict});
  card.append(el('div', {class: 'thumb'}, el('img', {src: '/api/characters/' + enc(c.file) + '/thumb?v=' + Date.now(), alt: c.file})));
  card.append(el('div', {class: 'name', text: c.file}));
  const badges = el('div', {}, el('span', {class: 'badge ' + c.verdict, text: verdictText}));
  if (c.prepared) badges.append(el('span', {class: 'badge prepared', text: 'prepared'}));
  card.append(badges);
  if (c.usable) {
    const facts = [c.width + '×' + c.height, c.alpha ? 'transparent background' : 'background cut out automatically'];
    if (c.face_fraction) facts.push('face ' + Math.round(c.face_fraction * 100) + '% of the height');
    if (c.marks) facts.push('face marked (' + c.kind + ')');
    card.append(el('div', {class: 'muted', text: facts.join(' · ')}));
    if (c.warnings.length) card.append(el('ul', {class: 'why'}, ...c.warnings.map(w => el('li', {text: w}))));
  } else {
    card.append(el('ul', {class: 'why err'}, el('li', {class: 'error', text: c.error})));
  }
  const bar = el('div', {class: 'progress', hidden: ''}, el('div'), el('span'));
  const prep = el('button', {class: 'prepare', text: c.prepared ? 'Prepare again' : 'Prepare'});
  prep.disabled = !c.usable;
  prep.onclick = async () => {
    prep.disabled = true;
    try {
      const job = await watchJob((await postJSON('/api/characters/' + enc(c.file) + '/prepare', {})).job, bar);
      bar.lastElementChild.textContent = job.state === 'done'
        ? 'prepared (' + job.result.status + ', ' + job.result.seconds.toFixed(2) + ' s)' : (job.error || job.state);
      card.dataset.prepared = job.state;
    } catch (e) { bar.hidden = false; bar.lastElementChild.textContent = e.message; }
    prep.disabled = false;
  };
  const mark = el('a', {class: 'button', href: '/mark/' + enc(c.file) + '/', target: '_blank', text: 'Mark face'});
  const live = el('button', {class: 'golive', text: 'Use live'});
  live.disabled = !c.usable || !liveRunning;
  live.onclick = async () => {
    try { await postJSON('/api/live/character', {character: c.file}); live.textContent = 'on stream'; }
    catch (e) { live.textContent = e.message.slice(0, 40); }
  };
  card.append(el('div', {class: 'actions'}, prep, mark, live), bar);
  return card;
}

async function upload(files) {
  const msg = $('#uploadMsg');
  for (const f of files) {
    const form = new FormData(); form.append('file', f, f.name);
    say(msg, 'adding ' + f.name + '…');
    try {
      const j = await api('/api/characters', {method: 'POST', body: form});
      say(msg, 'added ' + j.character.file + ': ' + ({usable: 'usable', warnings: 'usable, with warnings',
        no: 'cannot be used: ' + j.character.error}[j.character.verdict]), j.character.usable ? 'ok' : 'err');
    } catch (e) { say(msg, e.message, 'err'); }
  }
  await loadCharacters();
}
$('#addFile').onchange = e => upload([...e.target.files]).then(() => { e.target.value = ''; });
const drop = $('#drop');
drop.ondragover = e => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = e => { e.preventDefault(); drop.classList.remove('over'); upload([...e.dataTransfer.files]); };

// --- talking clips -----------------------------------------------------------------------------
function fillCharacterSelect() {
  const sel = $('#clipChar'), keep = sel.value;
  sel.textContent = '';
  for (const c of characters.filter(c => c.usable)) sel.append(el('option', {value: c.file, text: c.file}));
  if (keep) sel.value = keep;
}
let voicesLoaded = null;
async function loadVoices() {
  if (!voicesLoaded) voicesLoaded = api('/api/voices');
  return voicesLoaded;
}
loaders.clips = async () => {
  if (!characters.length) await loadCharacters();
  const v = await loadVoices(), sel = $('#clipVoice');
  if (sel.options.length === 1) for (const x of v.voices) sel.append(el('option', {value: x.name, text: x.name + (x.description ? ' — ' + x.description : '')}));
};
for (const r of document.querySelectorAll('input[name=source]')) r.onchange = () => {
  const rec = document.querySelector('input[name=source]:checked').value === 'recording';
  $('#textBox').hidden = rec; $('#recBox').hidden = !rec;
};
$('#clipDriver').onchange = () => { $('#clipDriverFile').hidden = $('#clipDriver').value !== 'file'; };

let clipJob = null;
$('#clipForm').onsubmit = async ev => {
  ev.preventDefault();
  const msg = $('#clipMsg'), bar = $('#clipProgress'), form = new FormData();
  form.append('character', $('#clipChar').value);
  form.append('format', $('#clipFormat').value);
  form.append('driver', $('#clipDriver').value);
  if ($('#clipDriver').value === 'file' && $('#clipDriverFile').files[0]) form.append('driver_file', $('#clipDriverFile').files[0]);
  if (document.querySelector('input[name=source]:checked').value === 'recording') {
    if (!$('#clipRec').files[0]) { say(msg, 'choose a recording', 'err'); return; }
    form.append('recording', $('#clipRec').files[0]);
  } else {
    form.append('text', $('#clipText').value); form.append('voice', $('#clipVoice').value);
    form.append('batch', $('#clipBatch').checked ? '1' : '0');
  }
  $('#generate').disabled = true; $('#clipCancel').hidden = false; say(msg, '');
  try {
    clipJob = (await api('/api/clips', {method: 'POST', body: form})).job;
    const job = await watchJob(clipJob, bar);
    if (job.state === 'done') showClips(job.result);
    else say(msg, job.state === 'cancelled' ? 'cancelled: nothing was written' : job.error, 'err');
  } catch (e) { say(msg, e.message, 'err'); }
  clipJob = null; $('#generate').disabled = false; $('#clipCancel').hidden = true;
};
const FORMAT_NOTES = {
  mp4: 'MP4 plays everywhere; green where the picture is transparent.',
  webm: 'WebM keeps the transparency and plays here (Chrome, Firefox, OBS).',
  mov: 'MOV (ProRes 4444) keeps the transparency for video editors; browsers do not play it: download only.',
};
const formatNote = () => say($('#clipFormatNote'), FORMAT_NOTES[$('#clipFormat').value] || '');
$('#clipFormat').onchange = formatNote;
formatNote();
$('#clipCancel').onclick = () => { if (clipJob) postJSON('/api/jobs/' + clipJob.id + '/cancel', {}); };

let clipCount = 0;
function showClips(result) {
  const last = result.clips[result.clips.length - 1], video = $('#clipVideo');
  const playable = !last.file.endsWith('.mov');  // browsers do not play ProRes: download it
  video.dataset.file = last.file;
  if (playable) { video.src = '/api/clips/' + enc(last.file); video.load(); } else video.removeAttribute('src');
  const links = $('#clipLinks'); links.textContent = '';
  for (const c of result.clips) links.append(el('a', {class: 'button', href: '/api/clips/' + enc(c.file) + '?download=1', text: 'Download ' + c.file}), ' ');
  const s = result.seconds, body = $('#clipTimes tbody');
  clipCount += 1;
  const what = result.clips.length > 1 ? result.clips.length + ' clips' : last.file;
  const row = el('tr', {'data-n': String(clipCount)},
    el('td', {text: clipCount + '. ' + what + ' (' + result.character + ', ' + last.duration_s.toFixed(1) + ' s)'}),
    el('td', {text: s.voice.toFixed(2) + ' s'}), el('td', {text: s.character.toFixed(2) + ' s (' + result.character_from + ')'}),
    el('td', {text: s.render.toFixed(2) + ' s'}), el('td', {class: 'total', text: s.total.toFixed(2) + ' s'}));
  body.prepend(row);
  say($('#clipMsg'), 'wrote ' + result.clips.map(c => c.file).join(', ') + ' in ' + s.total.toFixed(2) + ' s', 'ok');
  document.body.dataset.clips = String(clipCount);
}

// --- voice -------------------------------------------------------------------------------------
let settingsData = null;
async function loadSettings() { settingsData = await api('/api/settings'); return settingsData; }
const settingValue = key => settingsData.settings.find(s => s.key === key).value;
loaders.voice = async () => {
  const [v] = await Promise.all([loadVoices(), loadSettings()]);
  const sel = $('#voiceMic'); sel.textContent = '';
  sel.append(el('option', {value: '', text: 'no voice input'}), el('option', {value: 'default', text: 'the default microphone'}));
  for (const m of v.microphones) sel.append(el('option', {value: m.name, text: m.name}));
  if (!v.microphones.length) sel.append(el('option', {value: '', disabled: '', text: '(no microphones: ' + (v.microphones_why || 'none found') + ')'}));
  sel.append(el('option', {value: '@file', text: 'an audio or video file…'}));
  const mic = settingValue('voice.mic');
  if (mic && ![...sel.options].some(o => o.value === mic)) { sel.value = '@file'; $('#voiceFile').value = mic; }
  else sel.value = mic || '';
  $('#voiceFileRow').hidden = sel.value !== '@file';
  $('#voiceLipsync').value = settingValue('voice.lipsync');
};
$('#voiceMic').onchange = () => { $('#voiceFileRow').hidden = $('#voiceMic').value !== '@file'; };
$('#voiceForm').onsubmit = async ev => {
  ev.preventDefault();
  const mic = $('#voiceMic').value === '@file' ? $('#voiceFile').value : $('#voiceMic').value;
  try {
    const j = await postJSON('/api/settings', {changes: {'voice.mic': mic, 'voice.lipsync': $('#voiceLipsync').value}});
    say($('#voiceMsg'), 'saved to ' + j.saved + (j.applied_live ? ' (lip sync changed live)' : ''), 'ok');
  } catch (e) { say($('#voiceMsg'), e.message, 'err'); }
};
$('#calForm').onsubmit = async ev => {
  ev.preventDefault();
  try {
    const job = await watchJob((await api('/api/voice/calibrate', {method: 'POST', body: new FormData($('#calForm'))})).job, $('#calProgress'));
    if (job.state === 'done') say($('#calMsg'), 'stored your voice in ' + job.result.config + ' (level ' + job.result.floor_db + ' .. ' + job.result.peak_db + ' dBFS)', 'ok');
    else say($('#calMsg'), job.error || job.state, 'err');
  } catch (e) { say($('#calMsg'), e.message, 'err'); }
};

// --- settings ----------------------------------------------------------------------------------
function fieldInput(s) {
  const id = 'set-' + s.key;
  if (s.type === 'bool') { const i = el('input', {type: 'checkbox', id}); i.checked = !!s.value; return i; }
  if (s.type === 'choice') {
    const i = el('select', {id}); for (const c of s.choices) i.append(el('option', {value: c, text: c}));
    i.value = s.value; return i;
  }
  if (s.type === 'list' || s.type === 'map') { const i = el('textarea', {id, rows: '2'}); i.value = s.value; return i; }
  const i = el('input', {id, type: s.type === 'int' || s.type === 'number' ? 'number' : 'text'});
  if (s.min != null) { i.min = s.min; i.max = s.max; }
  if (s.type === 'number') i.step = 'any';
  i.value = s.value == null ? '' : s.value;
  return i;
}
const readField = (s, i) => s.type === 'bool' ? i.checked : i.value;
let fields = [];
async function renderSettings() {
  const d = await loadSettings();
  $('#setFile').textContent = d.file + (d.exists ? '' : ' (not created yet: the defaults apply)');
  const form = $('#setForm'); form.textContent = ''; fields = [];
  const sections = {};
  for (const s of d.settings) {
    const sec = s.key.includes('.') ? s.key.split('.')[0] : 'general';
    if (!sections[sec]) { sections[sec] = el('div', {class: 'card section'}, el('h3', {text: sec})); form.append(sections[sec]); }
    const input = fieldInput(s);
    const range = s.min != null ? ' (' + s.min + ' – ' + s.max + ')' : s.optional ? ' (may be empty)' : '';
    const label = el('label', {for: input.id, text: s.key.split('.').pop() + range});
    if (s.live) label.append(' ', el('span', {class: 'live', text: 'live'}));
    const box = el('div', {class: 'field', 'data-key': s.key}, label, input);
    if (s.help) box.append(el('div', {class: 'help', text: s.help}));
    box.append(el('div', {class: 'ferr'}));
    sections[sec].append(box);
    fields.push({s, input, box, initial: readField(s, input)});
  }
}
loaders.settings = renderSettings;
$('#saveSettings').onclick = async () => {
  const changes = {};
  for (const f of fields) {
    f.box.classList.remove('bad'); f.box.querySelector('.ferr').textContent = '';
    const v = readField(f.s, f.input);
    if (v !== f.initial) changes[f.s.key] = typeof v === 'boolean' ? v : String(v);
  }
  if (!Object.keys(changes).length) { say($('#setMsg'), 'nothing changed'); return; }
  try {
    const j = await postJSON('/api/settings', {changes});
    say($('#setMsg'), 'saved ' + j.keys.join(', ') + ' to ' + j.saved + (j.applied_live ? '; applied live: ' + j.applied_live.join(', ') : ''), 'ok');
    for (const f of fields) f.initial = readField(f.s, f.input);
    $('#setFile').textContent = j.saved;
  } catch (e) {
    say($('#setMsg'), 'not saved: ' + e.message, 'err');
    for (const [key, m] of Object.entries((e.body && e.body.fields) || {})) {
      const f = fields.find(x => x.s.key === key);
      if (f) { f.box.classList.add('bad'); f.box.querySelector('.ferr').textContent = m; }
    }
  }
};

// --- live --------------------------------------------------------------------------------------
let liveRunning = false, liveTimer = null, previewUrl = null;
$('#liveChar').onchange = () => postJSON('/api/live/character', {character: $('#liveChar').value})
  .catch(e => say($('#liveInfo'), e.message, 'err'));
async function pollLive() {
  let j;
  try { j = await api('/api/live'); } catch (e) { j = {running: false, why: e.message}; }
  liveRunning = j.running;
  $('#liveDot').classList.toggle('on', j.running);
  for (const b of document.querySelectorAll('.golive')) b.disabled = !j.running || b.closest('.char').dataset.verdict === 'no';
  const box = $('#liveInfo'); box.textContent = ''; $('#liveStatus').dataset.running = String(j.running);
  $('#liveCharRow').hidden = !j.running;
  if (!j.running) {
    box.append(el('h3', {text: 'No worker running'}), el('p', {class: 'muted', text: j.why}));
    $('#livePreview').textContent = ''; previewUrl = null;
    $('#livePreview').append(el('p', {class: 'muted', text: 'The preview appears when a worker runs.'}));
    return;
  }
  const s = j.status, v = s.voice || {};
  const dl = el('dl', {class: 'stat'});
  const row = (k, val) => dl.append(el('dt', {text: k}), el('dd', {text: val}));
  row('FPS', s.fps.toFixed(1));
  row('renderer', s.renderer);
  row('face', s.tracking + (s.camera_issue ? ' (' + s.camera_issue + ')' : ''));
  row('character', s.character || '—');
  row('voice', v.mic ? v.mic + ', ' + v.lipsync + (v.muted ? ', muted' : '') + (v.level_db != null ? ', ' + v.level_db.toFixed(0) + ' dB' : '') : 'no voice input');
  box.append(el('h3', {text: 'Worker running'}), dl);
  if (s.renderer_reason) box.append(el('p', {class: 'reason', text: 'renderer: ' + s.renderer_reason}));
  if (v.mic) box.append(el('div', {class: 'meter'}, el('div', {style: 'width:' + Math.round((v.openness || 0) * 100) + '%'})));
  const sel = $('#liveChar'), ids = (j.characters.characters || []).map(c => c.id);
  if (ids.join('\n') !== [...sel.options].map(o => o.value).join('\n')) {
    sel.textContent = ''; for (const id of ids) sel.append(el('option', {value: id, text: id}));
  }
  if (document.activeElement !== sel) sel.value = s.character || '';
  const p = $('#livePreview');
  if (j.preview.url !== previewUrl) {
    previewUrl = j.preview.url; p.textContent = '';
    p.append(previewUrl ? el('iframe', {src: previewUrl, title: 'live preview'}) : el('p', {class: 'muted', text: j.preview.why}));
  }
}
loaders.live = pollLive;
liveTimer = setInterval(() => { if (!document.hidden) pollLive(); }, 2000);

// --- start -------------------------------------------------------------------------------------
(async () => {
  await loadCharacters();
  showTab();
  pollLive();
  document.body.dataset.ready = '1';
})().catch(e => { document.body.dataset.ready = 'error'; document.body.prepend(el('div', {class: 'msg err', text: e.message})); });
