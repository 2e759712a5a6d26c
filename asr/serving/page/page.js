// The page: the microphone or a dropped file -> one WebSocket stream each, in the server's
// protocol (a JSON config, binary 16 kHz s16le PCM, {"type": "end"}); partial text as it
// comes, final segments with their word times, the server's one-line error if it sends one,
// and the latency: how long after a stretch of audio left the page its text came back.
"use strict";

const RATE = 16000; // Hz the page sends: the model's rate, so the server resamples nothing
const MIC_PACKET = 1600; // samples per microphone message: 100 ms
const FILE_PACKET = 16000; // samples per message of a dropped file: 1 s
const MAX_BUFFERED = 1 << 20; // bytes queued in the socket before a file's sending waits

const $ = (id) => document.getElementById(id);

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function wsUrl() {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
}

async function showModel() {
  try {
    const info = await (await fetch("info.json")).json();
    const size = info.parameters ? `, ${(info.parameters / 1e6).toFixed(2)} M parameters` : "";
    $("model").textContent =
      `model: ${info.model} (${info.backend}, ${info.layers} layers of ${info.d_model}${size}, ` +
      `${info.vocab} tokens; ${info.chunk_ms} ms chunks)`;
  } catch (err) {
    $("model").textContent = `model: unknown (${err})`;
  }
}

function toPcm16(floats) {
  const pcm = new Int16Array(floats.length);
  for (let i = 0; i < floats.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(floats[i] * 32768)));
  return pcm;
}

function seconds(t) {
  return t.toFixed(2);
}

// One stream: opens the socket, sends config, PCM and end; draws what comes back.
class Stream {
  constructor(label) {
    this.label = label;
    this.sent = []; // [samples sent so far, performance.now()] per message
    this.samples = 0;
    this.latencies = [];
    this.finals = [];
    this.closed = new Promise((resolve) => (this.onClosed = resolve));
    $("partial").textContent = "";
    $("finals").replaceChildren();
    $("transcript").textContent = "";
    $("latency").textContent = "";
  }

  open() {
    this.ws = new WebSocket(wsUrl());
    this.ws.binaryType = "arraybuffer";
    this.ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    this.ws.onclose = (event) => {
      if (!this.error && event.code !== 1000) setStatus(`${this.label}: connection closed (${event.code})`, true);
      this.onClosed();
    };
    return new Promise((resolve, reject) => {
      this.ws.onopen = () => {
        this.ws.send(JSON.stringify({ type: "config", sample_rate: RATE, format: "s16le" }));
        this.started = performance.now();
        resolve();
      };
      this.ws.onerror = () => reject(new Error(`cannot reach ${wsUrl()}`));
    });
  }

  send(pcm) {
    if (this.ws.readyState !== WebSocket.OPEN || pcm.length === 0) return;
    this.ws.send(pcm); // a view sends its own bytes only
    this.samples += pcm.length;
    this.sent.push([this.samples, performance.now()]);
  }

  end() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "end" }));
  }

  latency(end) {
    // time since the message that held the audio up to `end` seconds was sent
    const needed = Math.round(end * RATE);
    const hit = this.sent.find(([samples]) => samples >= needed);
    if (!hit) return;
    this.latencies.push(performance.now() - hit[1]);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    $("latency").textContent =
      `latency: ${Math.round(this.latencies.at(-1))} ms (median ${Math.round(median)} ms over ` +
      `${sorted.length} results)`;
  }

  receive(message) {
    if (message.type === "error") {
      this.error = message.error;
      setStatus(`error: ${message.error}`, true);
      return;
    }
    if (message.end !== undefined) this.latency(message.end);
    if (message.type === "partial") {
      $("partial").textContent = message.text;
    } else if (message.type === "final") {
      $("partial").textContent = "";
      if (message.text) this.showFinal(message);
    } else if (message.type === "done") {
      $("transcript").textContent = message.text;
      const took = (performance.now() - this.started) / 1000;
      setStatus(`${this.label}: ${seconds(message.duration)} s of audio, done after ${seconds(took)} s`);
    }
  }

  showFinal(message) {
    const item = document.createElement("li");
    item.title = `${seconds(message.start)}-${seconds(message.end)} s`;
    for (const word of message.words) {
      const span = document.createElement("span");
      span.className = "word";
      span.textContent = word.text;
      const time = document.createElement("small");
      time.textContent = `${seconds(word.start)}-${seconds(word.end)}`;
      span.append(time);
      item.append(span);
    }
    $("finals").append(item);
  }
}

// The microphone: getUserMedia -> AudioWorklet (capture.js) -> 100 ms packets of 16 kHz PCM.
const mic = { stream: null, context: null, media: null, node: null };

async function startMic() {
  $("mic").disabled = true;
  try {
    mic.media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    mic.context = new AudioContext();
    await mic.context.audioWorklet.addModule("capture.js");
    mic.stream = new Stream("microphone");
    await mic.stream.open();
    mic.node = new AudioWorkletNode(mic.context, "pcm16k", { processorOptions: { packet: MIC_PACKET } });
    mic.node.port.onmessage = (event) => {
      if (event.data === "flushed") mic.stream.end();
      else mic.stream.send(event.data);
    };
    mic.context.createMediaStreamSource(mic.media).connect(mic.node);
    mic.node.connect(mic.context.destination); // silent: keeps the worklet pulled
    await mic.context.resume();
    mic.stream.closed.then(stopMic);
    $("mic").textContent = "Stop";
    $("mic").setAttribute("aria-pressed", "true");
    setStatus(`listening (the microphone at ${mic.context.sampleRate} Hz, sent at ${RATE} Hz)`);
  } catch (err) {
    setStatus(`microphone: ${err.message || err}`, true);
    await stopMic();
  } finally {
    $("mic").disabled = false;
  }
}

async function stopMic() {
  if (mic.node) mic.node.port.postMessage("flush"); // the rest, then "flushed" -> end
  if (mic.media) mic.media.getTracks().forEach((track) => track.stop());
  const context = mic.context;
  Object.assign(mic, { context: null, media: null, node: null });
  $("mic").textContent = "Start the microphone";
  $("mic").setAttribute("aria-pressed", "false");
  if (context) setTimeout(() => context.close(), 500); // after the worklet's last packet
}

// A whole file: decodeAudioData in a 16 kHz context resamples it; mixed to mono; sent in 1 s packets.
async function sendFile(file) {
  setStatus(`${file.name}: decoding`);
  try {
    const decoded = await new OfflineAudioContext(1, 1, RATE).decodeAudioData(await file.arrayBuffer());
    const mono = new Float32Array(decoded.length);
    for (let c = 0; c < decoded.numberOfChannels; c++) {
      const channel = decoded.getChannelData(c);
      for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / decoded.numberOfChannels;
    }
    const stream = new Stream(file.name);
    await stream.open();
    setStatus(`${file.name}: sending ${seconds(mono.length / RATE)} s`);
    const pcm = toPcm16(mono);
    for (let start = 0; start < pcm.length && stream.ws.readyState === WebSocket.OPEN; start += FILE_PACKET) {
      while (stream.ws.bufferedAmount > MAX_BUFFERED) await new Promise((r) => setTimeout(r, 20));
      stream.send(pcm.subarray(start, start + FILE_PACKET));
    }
    stream.end();
    await stream.closed;
  } catch (err) {
    setStatus(`${file.name}: ${err.message || err}`, true);
  }
}

function setUp() {
  showModel();
  if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
    $("mic").disabled = true;
    $("mic").title = "browsers give the microphone only to https:// pages or http://localhost";
  }
  $("mic").addEventListener("click", () => (mic.context ? stopMic() : startMic()));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) sendFile(event.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) sendFile(event.target.files[0]);
  });
}

setUp();
