// The AudioWorklet that turns the microphone into what the server reads: mono, 16 kHz,
// 16-bit PCM, posted to the page in packets. The context runs at the device's rate (often
// 48 kHz), so each output sample is interpolated with a Hann-windowed sinc whose cutoff
// sits below the lower of the two Nyquist frequencies (no aliasing when downsampling).
"use strict";

const OUT_RATE = 16000; // Hz, what the server's model expects
const ZERO_CROSSINGS = 8; // of the sinc on each side of an output sample

class Pcm16k extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.packet = options.processorOptions.packet; // output samples per message
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.cutoff = 0.95 * Math.min(1, OUT_RATE / sampleRate); // of the input's Nyquist frequency
    this.half = Math.ceil(ZERO_CROSSINGS / this.cutoff); // input samples on each side
    this.input = new Float32Array(this.half); // history: silence before the first sample
    this.position = this.half; // where the next output sample falls in this.input
    this.out = new Int16Array(this.packet);
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.port.postMessage(this.out.slice(0, this.filled));
        this.filled = 0;
        this.port.postMessage("flushed");
      }
    };
  }

  append(block) {
    const joined = new Float32Array(this.input.length + block.length);
    joined.set(this.input);
    joined.set(block, this.input.length);
    this.input = joined;
  }

  sample(t) {
    // the band-limited value at fractional input position t
    const first = Math.floor(t) - this.half + 1;
    let sum = 0;
    for (let k = first; k <= Math.floor(t) + this.half; k++) {
      const x = (t - k) * this.cutoff; // in zero crossings of the sinc
      const u = (t - k) / this.half; // -1..1 across the window
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      sum += this.input[k] * this.cutoff * sinc * 0.5 * (1 + Math.cos(Math.PI * u));
    }
    return sum;
  }

  emit(value) {
    this.out[this.filled++] = Math.max(-32768, Math.min(32767, Math.round(value * 32768)));
    if (this.filled === this.packet) {
      this.port.postMessage(this.out);
      this.out = new Int16Array(this.packet);
      this.filled = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // no source connected yet
    const block = new Float32Array(channels[0].length);
    for (const channel of channels) {
      for (let i = 0; i < block.length; i++) block[i] += channel[i] / channels.length;
    }
    this.append(block);
    while (this.position + this.half < this.input.length) {
      this.emit(this.sample(this.position));
      this.position += this.step;
    }
    const drop = Math.floor(this.position) - this.half; // input no later output sample needs
    if (drop > 0) {
      this.input = this.input.slice(drop);
      this.position -= drop;
    }
    return true;
  }
}

registerProcessor("pcm16k", Pcm16k);
