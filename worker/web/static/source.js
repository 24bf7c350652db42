// The Browser Source page: draws the worker's frames (with their transparency) on a canvas that
// is never given a background, plays the lines the character says, and reconnects by itself.
// Frame format: worker/control/protocol.py, "WebSocket channel" (44-byte little-endian header).
"use strict";
(() => {
  const HEADER = 44, RGBA = 1, WEBP = 2, PNG = 3;
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const format = params.get("format") || "rgba";
  const canvas = document.getElementById("frame");
  const ctx = canvas.getContext("2d", { alpha: true });
  // What tests and the bench read: counts, the newest seq, paint latencies (ms, capture -> painted).
  const stats = (window.streamAnimator = {
    connected: false, connects: 0, received: 0, painted: 0, seq: -1, width: 0, height: 0,
    latencies: [], paintTimes: [], said: 0, errors: [],
    // per line said: sound start minus the paint of the first frame captured once the mouth follows it (ms)
    sayOffsets: [],
  });
  let line = null; // the line being said: {start (worker clock, ms), painted, played}
  let newest = null, drawing = false, socket = null, retry = 250, latencyMs = 0;

  const now = () => performance.timeOrigin + performance.now(); // ms, the worker's time.time() clock

  function header(buf) {
    const v = new DataView(buf);
    const magic = String.fromCharCode(v.getUint8(0), v.getUint8(1), v.getUint8(2), v.getUint8(3));
    if (magic !== "SAMF" || v.getUint16(4, true) !== 1) throw new Error("not a frame");
    return {
      format: v.getUint16(6, true), width: v.getUint32(8, true), height: v.getUint32(12, true),
      seq: Number(v.getBigUint64(16, true)), capture: v.getFloat64(24, true), length: v.getUint32(40, true),
    };
  }

  function clear() { ctx.clearRect(0, 0, canvas.width, canvas.height); }

  function size(w, h) {
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  }

  async function paint() {
    const f = newest;
    newest = null;
    if (!f) return;
    drawing = true;
    try {
      size(f.h.width, f.h.height);
      if (f.h.format === RGBA) {
        const px = new Uint8ClampedArray(f.buf, HEADER, f.h.width * f.h.height * 4);
        ctx.putImageData(new ImageData(px, f.h.width, f.h.height), 0, 0);
      } else {
        const type = f.h.format === WEBP ? "image/webp" : "image/png";
        const bmp = await createImageBitmap(new Blob([new Uint8Array(f.buf, HEADER, f.h.length)], { type }));
        clear();
        ctx.drawImage(bmp, 0, 0);
        bmp.close();
      }
      const t = now();
      stats.painted++;
      stats.seq = f.h.seq;
      stats.width = f.h.width;
      stats.height = f.h.height;
      if (line && line.painted === null && f.h.capture * 1000 >= line.start) {
        line.painted = t;
        syncDone(line);
      }
      const lat = t - f.h.capture * 1000;
      latencyMs = latencyMs ? 0.9 * latencyMs + 0.1 * lat : lat;
      stats.latencies.push(lat);
      stats.paintTimes.push(t);
      if (stats.latencies.length > 600) { stats.latencies.splice(0, 300); stats.paintTimes.splice(0, 300); }
    } catch (e) {
      stats.errors.push(String(e));
    } finally {
      drawing = false;
    }
  }

  function frameLoop() {
    if (newest && !drawing) paint();
    requestAnimationFrame(frameLoop);
  }

  function syncDone(l) {
    if (l.painted !== null && l.played !== null) stats.sayOffsets.push(l.played - l.painted);
  }

  function say(data) {
    // The mouth moves from data.start (worker clock); the sound starts then plus the paint latency.
    const audio = new Audio(data.url);
    audio.preload = "auto";
    const l = (line = { start: data.start * 1000, painted: null, played: null });
    // when the sound's first sample plays (a late start skips ahead, so this stays the line's start)
    audio.addEventListener("playing", () => { l.played = now() - audio.currentTime * 1000; syncDone(l); },
      { once: true });
    const play = () => audio.play().then(() => { stats.said++; }).catch((e) => stats.errors.push("audio: " + e));
    audio.addEventListener("canplaythrough", () => {
      const wait = data.start * 1000 + latencyMs - now();
      if (wait > 0) setTimeout(play, wait);
      else { audio.currentTime = -wait / 1000; play(); } // fetched late (a busy PC): keep to the mouth
    }, { once: true });
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}/ws?token=${encodeURIComponent(token)}&format=${encodeURIComponent(format)}`;
    const ws = (socket = new WebSocket(url));
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      stats.connected = true;
      stats.connects++;
      document.body.dataset.connected = "1";
      retry = 250;
      ws.send(JSON.stringify({ id: 1, op: "subscribe" }));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        const msg = JSON.parse(ev.data);
        if (msg.event === "say") say(msg.data);
        else if (msg.event === "stopping") clear();
        return;
      }
      try {
        newest = { h: header(ev.data), buf: ev.data };
        stats.received++;
      } catch (e) {
        stats.errors.push(String(e));
      }
    };
    ws.onclose = () => {
      // Fully transparent while the worker is away; back as soon as it listens again (tries every
      // 0.5 s at most: a refused connection on loopback costs nothing, and the 2 s budget after a
      // worker restart is mostly the worker's own start).
      stats.connected = false;
      document.body.dataset.connected = "0";
      newest = null;
      clear();
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 500);
    };
  }

  requestAnimationFrame(frameLoop);
  connect();
})();
