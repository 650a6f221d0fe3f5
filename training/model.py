"""The default model: a small VAE whose decoder is a streaming harmonic + filtered-noise synth.

Encoder (per latent frame of `ratio` samples, seeing that frame and the samples before it, an
`encoder_window` of 2048 in all): log-magnitude spectra of the whole window (Hann) and of its last
two frames, the cepstrum of the long one, the log RMS of `rms_slices` slices of the last two frames,
and a YIN pitch estimate (log2 f0, aperiodicity, and the pitch gated to 0 where the window is silent
or aperiodic), standardised with statistics measured on the training data, then an MLP -> mean and
log-variance of `latent_size` dims. Latent dim 0 is the standardised gated pitch plus the MLP's
correction (which starts at zero), so that pitch reaches the latent undistorted.

Decoder (causal, frame by frame): f0 is the inverse of that standardisation applied to dim 0,
plus a correction from a small network (linear layers over the current and two previous latent
frames, the causal convolution of RAVE's decoder written as a matmul, plus a linear path from the
current frame). A wider network of the same shape gives, per frame, `n_harmonics` harmonic
amplitudes, `n_noise_bands` noise-band gains and `substeps` points of harmonic and of noise
amplitude (all through one exp_sigmoid). A synth turns these into audio:
- harmonic part: one oscillator whose phase (float64) runs on from call to call, controls
  interpolated linearly from the previous frame's values, harmonics near Nyquist faded out;
- noise part: hash noise read from a fixed table at the stream's sample counter (so that the same
  stream gives the same noise however it is cut into calls), filtered frame by frame with a sum of
  fixed linear-phase band filters (FFT convolution), the filter tails overlap-added into the next
  frame.

All state between calls (latent cache, last controls, phase, noise tail and counter) goes in
and out of `decode_frames` explicitly, so training (state starts at zero) and streaming
(state kept in buffers by the export wrapper, export.py) run the same code. Scriptable. At one
latent frame per call, TorchScript's cost per op dominates: the decoder is written with few ops
per call (one stacking of the latents, one activation for all controls, one matmul for the
noise filter's response, precomputed tensors for everything that does not depend on the input).
"""

import math

import torch
from torch import Tensor, nn

from training.config import ModelConfig

CONV_KERNEL = 3  # latent frames the decoder looks at (current and two before)
PITCH_HIDDEN = 64
YIN_FMAX = 2000.0
PITCH_REF_LOG2 = math.log2(200.0)
YIN_THRESHOLD = 0.15
NOISE_TABLE = 2**18  # samples of hash noise kept in a table (5.9 s at 44.1 kHz), a power of two
NOISE_BATCH_STRIDE = 1000003  # table offset between the streams of a batch


def exp_sigmoid(x: Tensor) -> Tensor:
    """DDSP's positive squashing: 2 * sigmoid(x) ** ln(10) + 1e-7."""
    return 2.0 * torch.sigmoid(x).pow(math.log(10.0)) + 1e-7


def hash_noise(index: Tensor) -> Tensor:
    """Uniform noise in [-1, 1) from int64 sample indices (a 32-bit integer hash, period 2**32)."""
    x = index & 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & 0xFFFFFFFF
    x = x ^ (x >> 16)
    return (x & 0xFFFFFF).to(torch.float32) * (2.0 / 16777216.0) - 1.0


def noise_band_basis(cfg: ModelConfig) -> Tensor:
    """Frequency responses `[bands, ratio + 1]` (complex) of fixed causal linear-phase band filters.

    Bands are triangles on a mel-like scale that sum to one; each becomes a Hann-windowed FIR of
    `noise_fir` taps, zero-padded to 2 * ratio for overlap-add convolution of one frame.
    """
    taps = cfg.noise_fir
    n_bins = taps // 2 + 1
    freqs = torch.linspace(0, cfg.sr / 2, n_bins, dtype=torch.float64)
    mel = 2595.0 * torch.log10(1.0 + freqs / 700.0)
    centres = torch.linspace(0.0, float(mel[-1]), cfg.n_noise_bands, dtype=torch.float64)
    width = centres[1] - centres[0]
    tri = (1.0 - (mel[None, :] - centres[:, None]).abs() / width).clamp(min=0.0)  # [bands, bins]
    ir = torch.fft.irfft(tri.to(torch.complex128), n=taps)  # zero-phase
    ir = torch.roll(ir, taps // 2, dims=-1) * torch.hann_window(taps, periodic=False, dtype=torch.float64)
    padded = torch.zeros(cfg.n_noise_bands, 2 * cfg.ratio, dtype=torch.float64)
    padded[:, :taps] = ir
    return torch.fft.rfft(padded).to(torch.complex64)


def yin_pitch(frames: Tensor, lags: Tensor, sr: int, tau_min: int, threshold: float, ref_log2: float) -> Tensor:
    """YIN on the second half of each window against the first: `[B, F, 2h]` -> `[B, F, 3]`: log2 f0,
    aperiodicity, and the gated pitch `w * (log2 f0 - log2 200)`.

    d(tau) = sum over the second half of (x[n] - x[n - tau])**2 for tau = 1..h, cumulative-mean
    normalised; the period is the lowest minimum of the first dip under 0.15 (or the global
    minimum), refined by parabolic interpolation. The gate w goes from 1 for a periodic frame
    above -60 dBFS to 0 for an aperiodic or silent one, where YIN's answer means nothing.
    """
    r = frames.shape[-1] // 2
    current = frames[..., r:]
    # corr[k] = sum_n current[n] * frames[n + k] for k < r; lag tau = r - k. A circular correlation
    # over 2r points: n + k < 2r never wraps around.
    n_fft = 2 * r
    corr = torch.fft.irfft(torch.conj(torch.fft.rfft(current, n=n_fft)) * torch.fft.rfft(frames), n=n_fft)[..., :r]
    corr = corr.flip(-1)  # index i -> tau = i + 1
    energy = torch.cumsum(frames.pow(2), -1)
    energy = torch.cat([torch.zeros_like(energy[..., :1]), energy], -1)  # energy[k] = sum_{i<k} x_i^2
    e_cur = energy[..., 2 * r : 2 * r + 1] - energy[..., r : r + 1]
    # window of frames[r - tau : 2r - tau] for tau = 1..r
    e_lag = energy[..., r : 2 * r].flip(-1) - energy[..., :r].flip(-1)
    d = (e_cur + e_lag - 2.0 * corr).clamp(min=0.0)
    cmnd = d * lags / (torch.cumsum(d, -1) + 1e-7)
    cmnd = torch.cat([torch.ones_like(cmnd[..., :tau_min]), cmnd[..., tau_min:]], -1)
    below = cmnd < threshold
    first = torch.where(below.any(-1), below.float().argmax(-1), cmnd.argmin(-1))
    window = (lags - 1 >= first[..., None]) & (lags - 1 <= first[..., None] * 1.25 + 2)
    best = torch.where(window, cmnd, torch.full_like(cmnd, 1e9)).argmin(-1, keepdim=True)
    left = cmnd.gather(-1, (best - 1).clamp(min=0))
    mid = cmnd.gather(-1, best)
    right = cmnd.gather(-1, (best + 1).clamp(max=r - 1))
    denom = left - 2.0 * mid + right
    shift = torch.where(denom.abs() > 1e-6, 0.5 * (left - right) / denom, torch.zeros_like(denom))
    tau = best.float() + 1.0 + shift.clamp(-1.0, 1.0)
    log2_f0 = torch.log2(sr / tau)
    aperiodicity = mid.clamp(0.0, 1.0)
    level_db = 10.0 * torch.log10(e_cur / r + 1e-12)
    gate = ((level_db + 70.0) / 10.0).clamp(0.0, 1.0) * ((0.4 - aperiodicity) / 0.2).clamp(0.0, 1.0)
    return torch.cat([log2_f0, aperiodicity, gate * (log2_f0 - ref_log2)], -1)


class Encoder(nn.Module):
    """Audio with `context` samples before the first frame `[B, context + F * ratio]` -> mean,
    logvar `[B, latent, F]`, where `context = encoder_window - ratio`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ratio = cfg.ratio
        self.window = cfg.encoder_window
        self.context = cfg.encoder_window - cfg.ratio
        self.half = cfg.encoder_window // 2
        self.recent = 2 * cfg.ratio  # the short spectrum and the RMS slices look at the last two frames
        self.rms_slices = cfg.rms_slices
        self.register_buffer("window_long", torch.hann_window(self.window))
        self.register_buffer("window_short", torch.hann_window(self.recent))
        n_features = (self.half + 1) + self.half + (self.recent // 2 + 1) + cfg.rms_slices + 3
        self.sr = cfg.sr
        self.tau_min = int(cfg.sr / YIN_FMAX)
        self.yin_threshold = YIN_THRESHOLD
        self.pitch_ref_log2 = PITCH_REF_LOG2
        self.register_buffer("lags", torch.arange(1, self.half + 1, dtype=torch.float32))
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.net = nn.Sequential(
            nn.Linear(n_features, cfg.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.hidden, 2 * cfg.latent_size),
        )
        with torch.no_grad():  # dim 0 starts as the YIN pitch alone (see forward)
            self.net[-1].weight[0].zero_()
            self.net[-1].bias[0].zero_()

    def features(self, x: Tensor) -> Tensor:
        frames = x.unfold(-1, self.window, self.ratio)  # [B, F, window]: each frame and what came before
        logmag = torch.log(torch.fft.rfft(frames * self.window_long).abs() + 1e-3)
        cep = torch.fft.irfft(logmag, n=self.window)[..., 1 : self.half + 1]
        recent = frames[..., self.window - self.recent :]
        short = torch.log(torch.fft.rfft(recent * self.window_short).abs() + 1e-3)
        sub = recent.reshape(recent.shape[0], recent.shape[1], self.rms_slices, self.recent // self.rms_slices)
        sub_rms = 0.5 * torch.log(sub.pow(2).mean(-1) + 1e-8)
        feats = torch.cat([logmag, cep, short, sub_rms, self.pitch(frames)], -1)
        return (feats - self.feature_mean) / self.feature_std

    def pitch(self, frames: Tensor) -> Tensor:
        return yin_pitch(frames, self.lags, self.sr, self.tau_min, self.yin_threshold, self.pitch_ref_log2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.features(x)
        out = self.net(feats).transpose(1, 2)
        mean, logvar = out.chunk(2, 1)
        # Latent dim 0 carries the standardised gated YIN pitch as is; the MLP only corrects it.
        mean = torch.cat([mean[:, :1] + feats[..., -1][:, None], mean[:, 1:]], 1)
        return mean, logvar.clamp(-12.0, 6.0)


class FoldedEncoder(nn.Module):
    """Inference-only twin of a trained `Encoder`: the same posterior mean (up to float rounding) in
    fewer operations per call, for the export.

    The cepstrum is a linear map of the long log spectrum, and the standardisation an affine map of
    every feature, so both fold into the first layer's weights (2317 inputs become 1293, and the
    inverse FFT of the cepstrum goes away); the last layer keeps only the rows of the mean.
    """

    def __init__(self, encoder: Encoder, latent_size: int):
        super().__init__()
        self.ratio = encoder.ratio
        self.window = encoder.window
        self.context = encoder.context
        self.half = encoder.half
        self.recent = encoder.recent
        self.rms_slices = encoder.rms_slices
        self.sr = encoder.sr
        self.tau_min = encoder.tau_min
        self.yin_threshold = encoder.yin_threshold
        self.pitch_ref_log2 = encoder.pitch_ref_log2
        self.register_buffer("window_long", encoder.window_long.clone())
        self.register_buffer("window_short", encoder.window_short.clone())
        self.register_buffer("lags", encoder.lags.clone())
        with torch.no_grad():
            first, middle, last = encoder.net[0], encoder.net[2], encoder.net[4]
            mean = encoder.feature_mean.double()
            std = encoder.feature_std.double()
            scaled = first.weight.double() / std  # weights on the raw features
            bias = first.bias.double() - scaled @ mean
            n_spec, n_cep = self.half + 1, self.half
            # cepstrum = logmag @ to_cep: row i is irfft's answer to a unit log magnitude in bin i
            to_cep = torch.fft.irfft(torch.eye(n_spec, dtype=torch.float64), n=self.window)[:, 1 : self.half + 1]
            w_spec = scaled[:, :n_spec] + scaled[:, n_spec : n_spec + n_cep] @ to_cep.T
            weight = torch.cat([w_spec, scaled[:, n_spec + n_cep :]], 1)
            folded_first = nn.Linear(weight.shape[1], weight.shape[0])
            folded_first.weight.copy_(weight.float())
            folded_first.bias.copy_(bias.float())
            mean_out = nn.Linear(last.in_features, latent_size)
            mean_out.weight.copy_(last.weight[:latent_size])
            mean_out.bias.copy_(last.bias[:latent_size])
            second = nn.Linear(middle.in_features, middle.out_features)
            second.load_state_dict(middle.state_dict())
        self.net = nn.Sequential(folded_first, nn.LeakyReLU(0.2), second, nn.LeakyReLU(0.2), mean_out)
        self.gated_pitch_mean = float(encoder.feature_mean[-1])
        self.gated_pitch_std = float(encoder.feature_std[-1])

    def forward(self, x: Tensor) -> Tensor:
        """Audio with its context `[B, context + F * ratio]` -> posterior mean `[B, latent, F]`."""
        frames = x.unfold(-1, self.window, self.ratio)
        logmag = torch.log(torch.fft.rfft(frames * self.window_long).abs() + 1e-3)
        recent = frames[..., self.window - self.recent :]
        short = torch.log(torch.fft.rfft(recent * self.window_short).abs() + 1e-3)
        sub = recent.reshape(recent.shape[0], recent.shape[1], self.rms_slices, self.recent // self.rms_slices)
        sub_rms = 0.5 * torch.log(sub.pow(2).mean(-1) + 1e-8)
        pitch = yin_pitch(frames, self.lags, self.sr, self.tau_min, self.yin_threshold, self.pitch_ref_log2)
        mean = self.net(torch.cat([logmag, short, sub_rms, pitch], -1)).transpose(1, 2)
        gated = (pitch[..., 2] - self.gated_pitch_mean) / self.gated_pitch_std  # dim 0: see Encoder.forward
        return torch.cat([mean[:, :1] + gated[:, None], mean[:, 1:]], 1)


class DefaultModel(nn.Module):
    """Encoder + decoder network + streaming synth. See the module docstring."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.sr = cfg.sr
        self.ratio = cfg.ratio
        self.latent = cfg.latent_size
        self.n_harmonics = cfg.n_harmonics
        self.n_bands = cfg.n_noise_bands
        self.substeps = cfg.substeps
        self.log_f0_min = math.log(cfg.f0_min)
        self.log_f0_max = math.log(cfg.f0_max)
        self.cache_frames = CONV_KERNEL - 1
        self.pitch_ref_log2 = PITCH_REF_LOG2
        self.encoder = Encoder(cfg)
        h = cfg.hidden
        stacked = cfg.latent_size * CONV_KERNEL  # the current latent frame and the two before it
        self.conv = nn.Linear(stacked, h)
        self.mlp = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.Linear(h, h),
            nn.LeakyReLU(0.2),
            nn.Linear(h, h),
            nn.LeakyReLU(0.2),
        )
        self.n_out = 2 * cfg.substeps + cfg.n_harmonics + cfg.n_noise_bands
        self.head = nn.Linear(h, self.n_out)
        self.skip = nn.Linear(cfg.latent_size, self.n_out)  # linear path from the current latent
        p = PITCH_HIDDEN
        self.pitch_net = nn.Sequential(
            nn.Linear(stacked, p),
            nn.LeakyReLU(0.2),
            nn.Linear(p, p),
            nn.LeakyReLU(0.2),
            nn.Linear(p, 1),
        )
        self.pitch_skip = nn.Linear(cfg.latent_size, 1)
        for layer in (self.pitch_net[-1], self.pitch_skip):  # the correction starts at zero
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # log2 f0 = log2 200 + pitch_mean + pitch_std * z[0] + correction: the inverse of the
        # encoder's dim 0 (pitch_mean / pitch_std: the standardisation of the gated pitch feature).
        self.register_buffer("pitch_mean", torch.tensor(0.0))
        self.register_buffer("pitch_std", torch.tensor(1.0))
        # Offsets before the one exp_sigmoid that makes every control positive: quiet at the start.
        offset = torch.zeros(self.n_out)
        offset[: cfg.substeps] = -2.0  # harmonic amplitude
        offset[cfg.substeps : 2 * cfg.substeps] = -4.0  # noise amplitude
        self.register_buffer("out_offset", offset)
        # Noise-band responses as one real matrix: gains @ basis -> interleaved (re, im) pairs.
        basis = noise_band_basis(cfg)
        self.register_buffer("basis", torch.view_as_real(basis).reshape(cfg.n_noise_bands, -1).contiguous())
        self.noise_mask = NOISE_TABLE - 1
        self.noise_stride = NOISE_BATCH_STRIDE
        self.register_buffer("noise_table", hash_noise(torch.arange(NOISE_TABLE, dtype=torch.int64)))
        self.register_buffer("harmonic_numbers", torch.arange(1, cfg.n_harmonics + 1, dtype=torch.float32))
        self.register_buffer("ramp_frame", torch.arange(1, cfg.ratio + 1, dtype=torch.float32) / cfg.ratio)
        sub = cfg.ratio // cfg.substeps
        self.register_buffer("ramp_sub", torch.arange(1, sub + 1, dtype=torch.float32) / sub)

    def initial_state(self, batch: int, counter: int = 0) -> list[Tensor]:
        """Decoder state at the start of a stream: nothing heard yet."""
        return [
            torch.zeros(batch, self.latent, self.cache_frames),  # latent cache
            torch.zeros(batch, 1),  # last f0 (0: not started)
            torch.zeros(batch, 1),  # last harmonic amplitude
            torch.zeros(batch, 1),  # last noise amplitude
            torch.zeros(batch, self.n_harmonics),  # last harmonic distribution
            torch.zeros(batch, 1, dtype=torch.float64),  # oscillator phase, cycles
            torch.zeros(batch, self.ratio),  # noise filter tail
            torch.full([1], counter, dtype=torch.int64),  # noise sample counter
        ]

    def _stack(self, z: Tensor, cache: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`z[B, L, F]` and the cached frames before it -> frames stacked with their two predecessors
        `[B, F, L * 3]`, the current frames `[B, F, L]`, and the new cache `[B, L, 2]`."""
        zc = torch.cat([cache, z], -1)
        b, f = z.shape[0], z.shape[2]
        stacked = zc.unfold(-1, self.cache_frames + 1, 1).transpose(1, 2).reshape(b, f, -1)
        return stacked, z.transpose(1, 2), zc[..., zc.shape[-1] - self.cache_frames :]

    def f0(self, z0: Tensor, stacked: Tensor, current: Tensor) -> Tensor:
        """Latent dim 0 `[B, F]`, stacked and current frames (see `_stack`) -> f0 in Hz `[B, F]`."""
        correction = (self.pitch_net(stacked) + self.pitch_skip(current))[..., 0]
        log_f0 = math.log(2.0) * (self.pitch_ref_log2 + self.pitch_mean + self.pitch_std * z0) + correction
        return torch.exp(log_f0.clamp(self.log_f0_min, self.log_f0_max))

    def controls(self, stacked: Tensor, current: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Stacked and current frames -> harmonic amp `[B, F*S]`, noise amp `[B, F*S]`, harmonic
        distribution (unnormalised, positive) `[B, F, K]`, noise-band gains `[B, F, bands]`."""
        out = exp_sigmoid(self.head(self.mlp(self.conv(stacked))) + self.skip(current) + self.out_offset)
        b, f = out.shape[0], out.shape[1]
        s = self.substeps
        amp = out[..., :s].reshape(b, f * s)
        namp = out[..., s : 2 * s].reshape(b, f * s)
        harm = out[..., 2 * s : 2 * s + self.n_harmonics]
        gains = out[..., 2 * s + self.n_harmonics :]
        return amp, namp, harm, gains

    def _ramp(self, prev: Tensor, values: Tensor, ramp: Tensor) -> Tensor:
        """Linear interpolation from each previous value to each value: `[B, N] -> [B, N * len(ramp)]`."""
        seq = torch.cat([prev, values], 1)
        a = seq[:, :-1, None]
        return torch.lerp(a, seq[:, 1:, None], ramp).reshape(values.shape[0], -1)

    def synth(
        self, f0: Tensor, amp: Tensor, namp: Tensor, harm: Tensor, gains: Tensor, state: list[Tensor]
    ) -> tuple[Tensor, list[Tensor]]:
        f0_prev, amp_prev, namp_prev, harm_prev, phase, tail, counter = (
            state[1],
            state[2],
            state[3],
            state[4],
            state[5],
            state[6],
            state[7],
        )
        b, f = f0.shape[0], f0.shape[1]
        r = self.ratio
        k = self.harmonic_numbers
        f0_prev = torch.where(f0_prev > 0, f0_prev, f0[:, :1])  # first call: no glide from 0 Hz
        f0_seq = torch.cat([f0_prev, f0], 1)
        # Harmonic distribution, faded out approaching Nyquist, normalised to sum 1.
        f_hi = torch.maximum(f0_seq[:, 1:], f0_seq[:, :-1])
        mask = (f_hi[..., None] * k).mul_(-1.0 / (0.05 * self.sr)).add_(10.0).clamp_(0.0, 1.0)
        harm = harm * mask
        harm = harm / (harm.sum(-1, keepdim=True) + 1e-7)
        # Oscillator: per-sample f0 ramps from frame to frame; phase in float64, carried over.
        f0_s = torch.lerp(f0_seq[:, :-1, None], f0_seq[:, 1:, None], self.ramp_frame).detach()
        cycles = torch.cumsum(f0_s.reshape(b, f * r).to(torch.float64), -1).mul_(1.0 / self.sr).add_(phase)
        cycles = cycles - torch.floor(cycles)
        ph = cycles.to(torch.float32).reshape(b, f, r, 1)
        sines = torch.sin(ph * (2.0 * math.pi * k))  # [B, F, r, K]
        h_all = torch.cat([harm_prev[:, None], harm], 1)
        pair = torch.stack([h_all[:, :-1], h_all[:, 1:]], -2)  # [B, F, 2, K]: previous and own frame
        # [B, F, 2, r]; 5x faster than sines @ pair[B, F, K, 2] (a two-column product is a slow matmul)
        y = torch.matmul(pair, sines.transpose(-1, -2))
        harmonic = torch.lerp(y[..., 0, :], y[..., 1, :], self.ramp_frame).reshape(b, f * r)
        harmonic = harmonic * self._ramp(amp_prev, amp, self.ramp_sub)
        # Noise: a fixed table of hash noise read at the stream's sample counter, filtered frame by
        # frame by sum_b gain_b * band_b (FFT convolution, tails overlap-added into the next frame).
        stream_start = self.noise_stride * torch.arange(b, device=f0.device)[:, None]
        idx = (counter + torch.arange(f * r, device=f0.device)) + stream_start
        noise = self.noise_table[idx & self.noise_mask].reshape(b, f, r)
        spec = torch.fft.rfft(noise, n=2 * r)
        response = torch.view_as_complex(torch.matmul(gains, self.basis).reshape(b, f, r + 1, 2))
        filtered = torch.fft.irfft(spec * response, n=2 * r)  # [B, F, 2r]
        tails = torch.cat([tail[:, None], filtered[:, :-1, r:]], 1)
        noise_out = (filtered[..., :r] + tails).reshape(b, f * r) * self._ramp(namp_prev, namp, self.ramp_sub)
        new_state = [
            state[0],
            f0[:, -1:],
            amp[:, -1:],
            namp[:, -1:],
            harm[:, -1],
            cycles[:, -1:],
            filtered[:, -1, r:],
            counter + f * r,
        ]
        return harmonic + noise_out, new_state

    def decode_frames(
        self, z: Tensor, state: list[Tensor], z_f0: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor], Tensor]:
        """Latents `[B, L, F]` and state -> audio `[B, F * ratio]`, new state, f0 per frame `[B, F]`.

        `z_f0`, if given, are the latents f0 is read from (training passes the posterior mean there,
        and a sample from the posterior as `z`); otherwise `z`.
        """
        stacked, current, cache = self._stack(z, state[0])
        if z_f0 is None:
            f0 = self.f0(z[:, 0], stacked, current)
        else:
            stacked_f0, current_f0, _ = self._stack(z_f0, state[0])
            f0 = self.f0(z_f0[:, 0], stacked_f0, current_f0)
        amp, namp, harm, gains = self.controls(stacked, current)
        y, new_state = self.synth(f0, amp, namp, harm, gains, state)
        new_state[0] = cache
        return y, new_state, f0
