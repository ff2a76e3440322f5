"""Recurrent cells of sketch-rnn with recurrent dropout (Semeniuta et al. 2016).

Three decoder cells follow the reference implementation's ``lstm``, ``layer_norm`` and ``hyper``
choices (Ha & Eck 2017, section 3; HyperLSTM: Ha, Dai & Le 2016). Every cell applies recurrent
dropout to the cell *candidate* ``g = tanh(j)`` only::

    c_t = f * c_{t-1} + i * (m_t * g_t),   m_t in {0, 1/keep_prob},  P(m_t != 0) = keep_prob

``keep_prob`` is the probability of **keeping** a unit (0.9 by default, i.e. 10% dropped), and
the mask is only drawn in training mode.

Layout: sequences are time-major with a direction axis, ``x: [T, D, B, F]`` (``D = 2`` runs the
two directions of a bidirectional encoder side by side); every layer returns all hidden states
``h: [T, D, B, H]``. The plain LSTM runs through :class:`FusedLSTMFunction`, a hand-written
forward/backward over the whole sequence: one matrix product per step, the projection of the
constant latent ``z`` computed once per sequence, the gate arithmetic without an autograd graph,
and the weight gradient as one large product at the end. The per-step autograd loop
(``impl="loop"``) computes the same function the straightforward way and is kept as the
reference and the benchmark's baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CELL_TYPES = ("lstm", "layer_norm", "hyper")
MASK_MODES = ("step", "sequence")


def dropout_mask(
    shape: tuple[int, ...],
    keep_prob: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Inverted-dropout mask: each entry is ``1 / keep_prob`` with probability ``keep_prob``, else 0.

    Args:
        shape: mask shape, e.g. ``[T, B, H]`` (one mask per step) or ``[1, B, H]`` (per sequence).
        keep_prob: probability of keeping a unit, in (0, 1].

    Returns:
        ``float [*shape]`` with mean 1 in expectation.
    """
    if not 0.0 < keep_prob <= 1.0:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    return torch.empty(shape, device=device, dtype=dtype).bernoulli_(keep_prob, generator=generator).div_(keep_prob)


def orthogonal_gate_init_(w: torch.Tensor, n_gates: int = 4) -> torch.Tensor:
    """Orthogonal init of each ``[H, H]`` gate block of a recurrent weight ``[H, n_gates * H]``."""
    h = w.shape[-2]
    with torch.no_grad():
        for k in range(n_gates):
            nn.init.orthogonal_(w[..., k * h : (k + 1) * h])
    return w


class FusedLSTMFunction(torch.autograd.Function):
    """LSTM recurrence over a whole sequence with a hand-written backward pass.

    Each step computes the gate pre-activations with one matrix product,
    ``[h_{t-1}, x_t] @ W + e`` where ``W = [W_hh; W_x]`` and ``e`` is a per-sequence constant
    (bias, forget bias and the projection of constant inputs such as sketch-rnn's ``z``), so no
    per-step input projection is stored. Gate order inside the ``4H`` axis is ``[g, i, f, o]``
    (candidate first). ``D`` independent recurrences (the two directions of a bidirectional
    encoder) run side by side with batched products. With ``batch_sizes`` (rows sorted by length,
    longest first) step ``t`` updates only the first ``batch_sizes[t]`` rows, like a packed
    sequence: finished rows cost nothing, and their outputs after their last step are 0.

    Speed (CPU): the candidate's columns of ``W`` and ``e`` are doubled once per call (exact in
    floating point), so one ``sigmoid`` over all four gates gives ``sigmoid(2 x_g)`` and
    ``tanh(x_g) = 2 sigmoid(2 x_g) - 1``; ``tanh(c)`` is computed the same way (torch's CPU
    ``tanh`` costs several times its ``sigmoid``). When a gradient will be needed, the forward
    pass also writes each step's local derivatives while that step's gates are still in cache
    (the same amount of memory as keeping the gates and cells), so the backward pass reads them
    instead of recomputing them over the whole sequence: its time loop is six small element-wise
    operations and one matrix product per step, and the weight gradient is a few large products
    at the end.

    Args (forward):
        x: ``float [T, D, B, F]`` per-step inputs (no gradient is returned for them).
        extra: ``float [D, B, 4H]`` constant pre-activation added at every step.
        h0, c0: ``float [D, B, H]`` initial state.
        w: ``float [D, H + F, 4H]`` stacked recurrent and input weights.
        mask: ``float [T or 1, D, B, H]`` dropout mask on the candidate (entries 0 or
            ``1 / keep_prob``), or None.
        keep_prob: the mask's keep probability (ignored without a mask).
        batch_sizes: non-increasing active row counts per step (length T), or None (all rows).
        for_backward: store what the backward pass needs (False under ``no_grad``: inference).

    Returns:
        ``h: float [T, D, B, H]`` hidden states.
    """

    @staticmethod
    def forward(ctx, x, extra, h0, c0, w, mask, keep_prob, batch_sizes, for_backward=True):
        t_len, d, b, fx = x.shape
        hs = h0.shape[-1]
        h4 = 4 * hs
        w2 = w.clone()
        w2[..., :hs].mul_(2.0)
        e2 = extra.clone()
        e2[..., :hs].mul_(2.0)
        hx = x.new_zeros(t_len + 1, d, b, hs + fx)  # step t reads [h_{t-1}, x_t] = hx[t]
        hx[:t_len, :, :, hs:] = x
        hx[0, :, :, :hs] = h0
        c = c0.clone()  # the cell state, updated in place (finished rows keep their last value)
        gates = x.new_empty(d, b, h4)  # one step's activated gates: g (times the mask), i, f, o
        tanh_c = x.new_empty(d, b, hs)
        if for_backward:
            p = x.new_empty(t_len, d, b, h4)  # dL/d(pre-activation) = p * (dc, dc, dc, dh) per gate
            dc_dh = x.new_empty(t_len, d, b, hs)  # dc += dc_dh * dh
            fgate = x.new_empty(t_len, d, b, hs)  # dc_{t-1} = f * dc_t
        for t in range(t_len):
            n = b if batch_sizes is None else batch_sizes[t]
            if n == 0:
                continue
            a = gates[:, :n]
            torch.baddbmm(e2[:, :n], hx[t, :, :n], w2, out=a)
            a.sigmoid_()
            g, i, f, o = a.split(hs, dim=-1)
            g.mul_(2.0).sub_(1.0)  # tanh of the candidate
            c_prev = c[:, :n]
            if for_backward:
                pg, pi, pf, po = p[t, :, :n].split(hs, dim=-1)
                torch.addcmul(f, f, f, value=-1.0, out=pf).mul_(c_prev)  # df: c_prev f (1 - f)
                fgate[t, :, :n].copy_(f)
            if mask is not None:
                m = mask[t if mask.shape[0] > 1 else 0, :, :n]
                g.mul_(m)
                if for_backward:  # dg: i m (1 - g^2) = i (m - keep (m g)^2), also 0 where m = 0
                    torch.addcmul(m, g, g, value=-keep_prob, out=pg).mul_(i)
            elif for_backward:  # dg: i (1 - g^2)
                torch.mul(g, g, out=pg)
                torch.addcmul(i, i, pg, value=-1.0, out=pg)
            c_prev.mul_(f).addcmul_(i, g)
            tc = tanh_c[:, :n]
            torch.mul(c_prev, 2.0, out=tc).sigmoid_().mul_(2.0).sub_(1.0)  # tanh(c)
            h = hx[t + 1, :, :n, :hs]
            torch.mul(o, tc, out=h)
            if for_backward:
                torch.addcmul(i, i, i, value=-1.0, out=pi).mul_(g)  # di: (m g) i (1 - i)
                torch.addcmul(o, o, o, value=-1.0, out=po).mul_(tc)  # do: tanh(c) o (1 - o)
                torch.addcmul(o, h, tc, value=-1.0, out=dc_dh[t, :, :n])  # dc/dh: o (1 - tanh(c)^2)
        if for_backward:
            ctx.save_for_backward(w)
            ctx.buffers = (p, dc_dh, fgate, hx)
            ctx.batch_sizes = batch_sizes
        return hx[1:, :, :, :hs].contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h):
        (w,) = ctx.saved_tensors
        p, dc_dh, fgate, hx = ctx.buffers
        batch_sizes = ctx.batch_sizes
        t_len, d, b, h4 = p.shape
        hs = h4 // 4
        po = p[..., 3 * hs :]
        w_h = w[:, :hs].transpose(1, 2)  # [D, 4H, H]
        dgates = torch.empty_like(p)  # finished rows are zeroed step by step below (not the whole buffer)
        dh = p.new_zeros(d, b, hs)
        dc = p.new_zeros(d, b, hs)
        grad_h = grad_h.contiguous()
        for t in range(t_len - 1, -1, -1):
            n = b if batch_sizes is None else batch_sizes[t]
            if n < b:
                dgates[t, :, n:].zero_()
            if n == 0:
                continue
            dh_n, dc_n = dh[:, :n], dc[:, :n]
            dh_n.add_(grad_h[t, :, :n])
            dc_n.addcmul_(dh_n, dc_dh[t, :, :n])
            for j in range(3):  # g, i, f; one product per gate (a broadcast product into the strided
                # [D, n, 3, H] view runs ~20x slower per element on CPU)
                torch.mul(dc_n, p[t, :, :n, j * hs : (j + 1) * hs], out=dgates[t, :, :n, j * hs : (j + 1) * hs])
            torch.mul(dh_n, po[t, :, :n], out=dgates[t, :, :n, 3 * hs :])
            dc_n.mul_(fgate[t, :, :n])
            if n == b:
                torch.bmm(dgates[t], w_h, out=dh)
            else:
                dh_n.copy_(torch.bmm(dgates[t, :, :n], w_h))
        dw = torch.zeros_like(w)
        if batch_sizes is None:
            dw.baddbmm_(hx[:-1].transpose(0, 1).reshape(d, -1, hx.shape[-1]).transpose(1, 2),
                        dgates.transpose(0, 1).reshape(d, -1, h4))
        else:
            for t0 in range(0, t_len, 16):
                t1, n = min(t0 + 16, t_len), batch_sizes[t0]
                if n == 0:
                    break
                hp = hx[t0:t1, :, :n].transpose(0, 1).reshape(d, -1, hx.shape[-1])
                dg = dgates[t0:t1, :, :n].transpose(0, 1).reshape(d, -1, h4)
                dw.baddbmm_(hp.transpose(1, 2), dg)
        dextra = dgates.sum(0) if ctx.needs_input_grad[1] else None
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.matmul(dgates, w[:, hs:].transpose(1, 2).unsqueeze(0))
        return dx, dextra, dh, dc, dw, None, None, None, None


def _loop_lstm(x, extra, h0, c0, w, mask):
    """The recurrence of :class:`FusedLSTMFunction` with autograd at every step (all rows, all steps)."""
    hs = h0.shape[-1]
    h, c = h0, c0
    out = []
    for t in range(x.shape[0]):
        gates = torch.baddbmm(extra, torch.cat([h, x[t]], dim=-1), w)
        g = torch.tanh(gates[..., :hs])
        i, f, o = torch.sigmoid(gates[..., hs:]).split(hs, dim=-1)
        if mask is not None:
            g = g * mask[t if mask.shape[0] > 1 else 0]
        c = f * c + i * g
        h = o * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=0)


def lstm_sequence(x, extra, h0, c0, w, mask=None, keep_prob=1.0, batch_sizes=None, impl: str = "fused"):
    """Run the LSTM recurrence: see :class:`FusedLSTMFunction` for shapes; returns ``[T, D, B, H]``.

    Args:
        impl: ``"fused"`` (hand-written backward) or ``"loop"`` (autograd at every step; ignores
            ``batch_sizes`` and computes every position).
    """
    if impl == "fused":
        for_backward = torch.is_grad_enabled() and any(t.requires_grad for t in (x, extra, h0, c0, w))
        return FusedLSTMFunction.apply(x, extra, h0, c0, w, mask, keep_prob, batch_sizes, for_backward)
    if impl == "loop":
        return _loop_lstm(x, extra, h0, c0, w, mask)
    raise ValueError(f"impl must be 'fused' or 'loop', got {impl!r}")


class RecurrentLayer(nn.Module):
    """Base of the cells: ``D`` parallel recurrences over time-major ``[T, D, B, F]`` inputs.

    Args:
        input_size: F, features per step (constant inputs such as ``z`` included).
        hidden_size: H.
        directions: D independent weight sets run side by side (2 for a bidirectional encoder).
        keep_prob: recurrent-dropout keep probability of the candidate (1.0 disables it).
        mask_mode: ``"step"`` (a new mask each step, as the reference) or ``"sequence"`` (one mask
            per sequence, Gal & Ghahramani 2016).
        forget_bias: added to the forget gate's pre-activation (1.0).
    """

    def __init__(self, input_size: int, hidden_size: int, *, directions: int = 1, keep_prob: float = 0.9,
                 mask_mode: str = "step", forget_bias: float = 1.0) -> None:
        super().__init__()
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.directions = directions
        self.keep_prob = keep_prob
        self.mask_mode = mask_mode
        self.forget_bias = forget_bias

    @property
    def state_size(self) -> int:
        """Size of the flattened state that a latent initialises (``c`` and ``h``)."""
        return 2 * self.hidden_size

    def make_mask(self, t_len: int, batch: int, generator, device) -> torch.Tensor | None:
        """Dropout mask ``[T or 1, D, B, H]`` in training mode with keep_prob < 1, else None."""
        if not self.training or self.keep_prob >= 1.0:
            return None
        steps = t_len if self.mask_mode == "step" else 1
        return dropout_mask((steps, self.directions, batch, self.hidden_size), self.keep_prob,
                            generator=generator, device=device)

    def zero_state(self, batch: int, like: torch.Tensor):
        """All-zero state for ``batch`` rows (the unconditional decoder's start)."""
        z = like.new_zeros(self.directions, batch, self.hidden_size)
        return (z, z)

    def split_state(self, flat: torch.Tensor):
        """``[D, B, state_size]`` (as produced from z) -> the layer's state tuple."""
        c, h = flat.split(self.hidden_size, dim=-1)
        return (h.contiguous(), c.contiguous())


class LSTMLayer(RecurrentLayer):
    """LSTM with recurrent dropout (the reference ``lstm`` cell).

    Parameters: ``weight_ih [D, 4H, F]``, ``weight_hh [D, H, 4H]`` (orthogonal ``H x H`` blocks),
    ``bias [D, 4H]`` (zeros; the forget bias is a constant added in the forward pass).
    State: ``(h, c)`` each ``[D, B, H]``.

    Args:
        impl: ``"fused"`` (:class:`FusedLSTMFunction`, inputs projected once for all steps) or
            ``"loop"`` (the straightforward per-step cell on ``[x_t, z]``, one direction at a time,
            autograd at every step).
    """

    def __init__(self, input_size: int, hidden_size: int, *, impl: str = "fused", **kw) -> None:
        super().__init__(input_size, hidden_size, **kw)
        if impl not in ("fused", "loop"):
            raise ValueError(f"impl must be 'fused' or 'loop', got {impl!r}")
        d, h = self.directions, hidden_size
        self.impl = impl
        self.weight_ih = nn.Parameter(torch.empty(d, 4 * h, input_size))
        self.weight_hh = nn.Parameter(torch.empty(d, h, 4 * h))
        self.bias = nn.Parameter(torch.zeros(d, 4 * h))
        for k in range(d):
            nn.init.xavier_uniform_(self.weight_ih.data[k])
            orthogonal_gate_init_(self.weight_hh.data[k])

    def _bias(self) -> torch.Tensor:
        """``[D, 4H]`` bias plus the constant forget bias."""
        h = self.hidden_size
        fb = torch.zeros(4 * h, dtype=self.bias.dtype, device=self.bias.device)
        fb[2 * h : 3 * h] = self.forget_bias
        return self.bias + fb

    def forward(self, x: torch.Tensor, state=None, *, const: torch.Tensor | None = None,
                generator: torch.Generator | None = None, batch_sizes: list[int] | None = None) -> torch.Tensor:
        """Run over a sequence.

        Args:
            x: ``float [T, D, B, Fx]`` per-step inputs.
            state: ``(h0, c0)`` each ``float [D, B, H]`` (zeros if None).
            const: ``float [D, B, Fc]`` input appended to every step (sketch-rnn's ``z``);
                ``Fx + Fc`` must equal ``input_size``.
            generator: RNG of the dropout mask.
            batch_sizes: active rows per step for length-sorted batches (see
                :class:`FusedLSTMFunction`); positions after a row's end are then 0.

        Returns:
            ``float [T, D, B, H]`` hidden states.
        """
        t_len, d, b, fx = x.shape
        state = state if state is not None else self.zero_state(b, x)
        mask = self.make_mask(t_len, b, generator, x.device)
        if self.impl == "loop":
            return self._forward_loop(x, state, const, mask)
        w_x = self.weight_ih[..., :fx].transpose(1, 2)  # [D, Fx, 4H]
        extra = self._bias()[:, None].expand(d, b, -1)
        if const is not None:
            extra = torch.baddbmm(extra, const, self.weight_ih[..., fx:].transpose(1, 2))
        w = torch.cat([self.weight_hh, w_x], dim=1)
        return lstm_sequence(x, extra.contiguous(), state[0], state[1], w, mask, self.keep_prob, batch_sizes)

    def _forward_loop(self, x, state, const, mask):
        hs = self.hidden_size
        bias = self._bias()
        outs = []
        for k in range(self.directions):
            h, c = state[0][k], state[1][k]
            out = []
            for t in range(x.shape[0]):
                inp = x[t, k] if const is None else torch.cat([x[t, k], const[k]], dim=-1)
                gates = F.linear(inp, self.weight_ih[k], bias[k]) + h @ self.weight_hh[k]
                g = torch.tanh(gates[:, :hs])
                i, f, o = torch.sigmoid(gates[:, hs:]).split(hs, dim=-1)
                if mask is not None:
                    g = g * mask[t if mask.shape[0] > 1 else 0, k]
                c = f * c + i * g
                h = o * torch.tanh(c)
                out.append(h)
            outs.append(torch.stack(out, dim=0))
        return torch.stack(outs, dim=1)

    def step(self, x: torch.Tensor, state, const: torch.Tensor | None = None):
        """One step without dropout (sampling): ``x [D, B, Fx]`` -> ``(h, new state)``."""
        hs = self.hidden_size
        h, c = state
        inp = x if const is None else torch.cat([x, const], dim=-1)
        gates = torch.baddbmm(self._bias()[:, None], inp, self.weight_ih.transpose(1, 2)) + torch.bmm(h, self.weight_hh)
        g = torch.tanh(gates[..., :hs])
        i, f, o = torch.sigmoid(gates[..., hs:]).split(hs, dim=-1)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, (h, c)


def _layer_norm_blocks(x: torch.Tensor, n: int, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    """Layer-normalise each of ``n`` equal blocks of the last axis separately, then ``* gamma + beta``.

    ``x [..., n*H]``, ``gamma, beta [D, n*H]`` broadcast over the batch: ``[D, B, n*H]`` inputs.
    """
    shape = x.shape
    xb = x.reshape(*shape[:-1], n, shape[-1] // n)
    xb = F.layer_norm(xb, (xb.shape[-1],), eps=eps).reshape(shape)
    return xb * gamma[:, None] + beta[:, None]


class LayerNormLSTMLayer(RecurrentLayer):
    """Layer-normalised LSTM (Ba et al. 2016) with recurrent dropout: the reference ``layer_norm`` cell.

    Each gate's pre-activation ``x W_x + h W_h`` is normalised on its own (gain 1, shift 0 at
    init, no separate bias), and so is the cell before the output ``h = o * tanh(LN(c))``.
    Runs as an autograd loop over steps; the inputs are projected once for all steps.
    """

    ln_eps = 1e-3

    def __init__(self, input_size: int, hidden_size: int, **kw) -> None:
        super().__init__(input_size, hidden_size, **kw)
        d, h = self.directions, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(d, 4 * h, input_size))
        self.weight_hh = nn.Parameter(torch.empty(d, h, 4 * h))
        self.ln_gamma = nn.Parameter(torch.ones(d, 4 * h))
        self.ln_beta = nn.Parameter(torch.zeros(d, 4 * h))
        self.ln_c_gamma = nn.Parameter(torch.ones(d, h))
        self.ln_c_beta = nn.Parameter(torch.zeros(d, h))
        for k in range(d):
            nn.init.xavier_uniform_(self.weight_ih.data[k])
            orthogonal_gate_init_(self.weight_hh.data[k])

    def _cell(self, pre: torch.Tensor, h, c, m):
        hs = self.hidden_size
        gates = _layer_norm_blocks(pre + torch.bmm(h, self.weight_hh), 4, self.ln_gamma, self.ln_beta, self.ln_eps)
        i = torch.sigmoid(gates[..., :hs])
        f = torch.sigmoid(gates[..., hs : 2 * hs] + self.forget_bias)
        o = torch.sigmoid(gates[..., 2 * hs : 3 * hs])
        g = torch.tanh(gates[..., 3 * hs :])
        if m is not None:
            g = g * m
        c = f * c + i * g
        h = o * torch.tanh(_layer_norm_blocks(c, 1, self.ln_c_gamma, self.ln_c_beta, self.ln_eps))
        return h, c

    def _project(self, x, const):
        fx = x.shape[-1]
        pre = torch.einsum("tdbf,dgf->tdbg", x, self.weight_ih[..., :fx])
        if const is not None:
            pre = pre + torch.bmm(const, self.weight_ih[..., fx:].transpose(1, 2))
        return pre

    def forward(self, x, state=None, *, const=None, generator=None, batch_sizes=None) -> torch.Tensor:
        """Same contract as :meth:`LSTMLayer.forward` (``batch_sizes`` is accepted and not needed)."""
        t_len, _d, b, _ = x.shape
        h, c = state if state is not None else self.zero_state(b, x)
        mask = self.make_mask(t_len, b, generator, x.device)
        pre = self._project(x, const)
        out = []
        for t in range(t_len):
            h, c = self._cell(pre[t], h, c, None if mask is None else mask[t if mask.shape[0] > 1 else 0])
            out.append(h)
        return torch.stack(out, dim=0)

    def step(self, x, state, const=None):
        """One step without dropout: ``x [D, B, Fx]`` -> ``(h, new state)``."""
        pre = self._project(x[None], const)[0]
        h, c = self._cell(pre, state[0], state[1], None)
        return h, (h, c)


class HyperLSTMLayer(RecurrentLayer):
    """HyperLSTM (Ha, Dai & Le 2016) with layer norm and recurrent dropout: the reference ``hyper`` cell.

    A small layer-normalised LSTM (``hyper_size`` units) reads ``[x_t, h_{t-1}]`` and, through
    ``embed_size``-dimensional embeddings, produces per-step scales of the main cell's input and
    recurrent projections and a per-step bias for each gate. The state is
    ``(h, c, hyper_h, hyper_c)``; a latent initialises ``[c, h]`` of the main cell and the hyper
    cell's state too (``state_size = 2 (H + hyper_size)``).

    Args:
        hyper_size / embed_size: the hyper cell's units and the embedding size.
        hyper_dropout: recurrent dropout inside the hyper cell too (the reference has none there).
        scale_init: the per-unit modulation scales of the x- and h-projections at initialisation
            (1.0: the cell starts as a layer-norm LSTM; the reference starts them at 0.1).
    """

    ln_eps = 1e-3

    def __init__(self, input_size: int, hidden_size: int, *, hyper_size: int = 256, embed_size: int = 32,
                 hyper_dropout: bool = True, scale_init: float = 1.0, **kw) -> None:
        super().__init__(input_size, hidden_size, **kw)
        if self.directions != 1:
            raise ValueError("HyperLSTMLayer runs one direction (it is a decoder cell)")
        h = hidden_size
        self.hyper_size = hyper_size
        self.embed_size = embed_size
        hyper_kw = dict(kw, keep_prob=kw.get("keep_prob", 0.9) if hyper_dropout else 1.0)
        self.hyper = LayerNormLSTMLayer(input_size + h, hyper_size, **hyper_kw)
        self.weight_ih = nn.Parameter(torch.empty(4 * h, input_size))
        self.weight_hh = nn.Parameter(torch.empty(h, 4 * h))
        self.bias = nn.Parameter(torch.zeros(4 * h))
        nn.init.xavier_uniform_(self.weight_ih)
        orthogonal_gate_init_(self.weight_hh)
        # hyper_h -> embeddings (scales of x- and h-projections, bias) for the 4 gates
        self.embed_x = nn.Linear(hyper_size, 4 * embed_size)
        self.embed_h = nn.Linear(hyper_size, 4 * embed_size)
        self.embed_b = nn.Linear(hyper_size, 4 * embed_size, bias=False)
        nn.init.zeros_(self.embed_x.weight)
        nn.init.ones_(self.embed_x.bias)
        nn.init.zeros_(self.embed_h.weight)
        nn.init.ones_(self.embed_h.bias)
        nn.init.normal_(self.embed_b.weight, std=0.01)
        # embeddings -> per-unit scales and bias: the scales start at scale_init (the embeddings start
        # at 1) and the bias at 0, and the hyper network learns to modulate them
        self.scale_x = nn.Parameter(torch.full((4, embed_size, h), scale_init / embed_size))
        self.scale_h = nn.Parameter(torch.full((4, embed_size, h), scale_init / embed_size))
        self.bias_b = nn.Parameter(torch.zeros(4, embed_size, h))
        self.ln_gamma = nn.Parameter(torch.ones(1, 4 * h))
        self.ln_beta = nn.Parameter(torch.zeros(1, 4 * h))
        self.ln_c_gamma = nn.Parameter(torch.ones(1, h))
        self.ln_c_beta = nn.Parameter(torch.zeros(1, h))

    @property
    def state_size(self) -> int:
        return 2 * (self.hidden_size + self.hyper_size)

    def zero_state(self, batch: int, like: torch.Tensor):
        z = like.new_zeros(1, batch, self.hidden_size)
        zh = like.new_zeros(1, batch, self.hyper_size)
        return (z, z, zh, zh)

    def split_state(self, flat: torch.Tensor):
        h, hh = self.hidden_size, self.hyper_size
        c, hm, hc, hh_ = flat.split([h, h, hh, hh], dim=-1)
        return (hm.contiguous(), c.contiguous(), hh_.contiguous(), hc.contiguous())

    def _scales(self, hyper_h: torch.Tensor):
        """Per-gate scales ``[B, 4H]`` of the x- and h-projections and the bias from ``hyper_h [B, Hh]``."""
        b, e = hyper_h.shape[0], self.embed_size
        zx = self.embed_x(hyper_h).view(b, 4, e)
        zh = self.embed_h(hyper_h).view(b, 4, e)
        zb = self.embed_b(hyper_h).view(b, 4, e)
        sx = torch.einsum("bge,geh->bgh", zx, self.scale_x).reshape(b, -1)
        sh = torch.einsum("bge,geh->bgh", zh, self.scale_h).reshape(b, -1)
        bb = torch.einsum("bge,geh->bgh", zb, self.bias_b).reshape(b, -1)
        return sx, sh, bb

    def _cell(self, x_t, xproj_t, state, m, mh):
        hs = self.hidden_size
        h, c, hh, hc = state
        hyper_pre = self.hyper._project(torch.cat([x_t, h[0]], dim=-1)[None, None], None)[0]
        hh_new, hc_new = self.hyper._cell(hyper_pre, hh, hc, mh)
        sx, sh, bb = self._scales(hh_new[0])
        pre = xproj_t * sx + (h[0] @ self.weight_hh) * sh + self.bias + bb
        gates = _layer_norm_blocks(pre[None], 4, self.ln_gamma, self.ln_beta, self.ln_eps)[0]
        i = torch.sigmoid(gates[:, :hs])
        f = torch.sigmoid(gates[:, hs : 2 * hs] + self.forget_bias)
        o = torch.sigmoid(gates[:, 2 * hs : 3 * hs])
        g = torch.tanh(gates[:, 3 * hs :])
        if m is not None:
            g = g * m
        c_new = f * c[0] + i * g
        h_new = o * torch.tanh(_layer_norm_blocks(c_new[None], 1, self.ln_c_gamma, self.ln_c_beta, self.ln_eps)[0])
        return h_new, (h_new[None], c_new[None], hh_new, hc_new)

    def forward(self, x, state=None, *, const=None, generator=None, batch_sizes=None) -> torch.Tensor:
        """Same contract as :meth:`LSTMLayer.forward` with ``D = 1``."""
        t_len, _, b, _ = x.shape
        state = state if state is not None else self.zero_state(b, x)
        mask = self.make_mask(t_len, b, generator, x.device)
        mask_h = self.hyper.make_mask(t_len, b, generator, x.device)
        inp = x[:, 0] if const is None else torch.cat([x[:, 0], const[0].expand(t_len, -1, -1)], dim=-1)
        xproj = inp @ self.weight_ih.t()  # [T, B, 4H]
        out = []
        for t in range(t_len):
            m = None if mask is None else mask[t if mask.shape[0] > 1 else 0, 0]
            mh = None if mask_h is None else mask_h[t if mask_h.shape[0] > 1 else 0]
            h, state = self._cell(inp[t], xproj[t], state, m, mh)
            out.append(h)
        return torch.stack(out, dim=0)[:, None]

    def step(self, x, state, const=None):
        """One step without dropout: ``x [1, B, Fx]`` -> ``(h [1, B, H], new state)``."""
        inp = x[0] if const is None else torch.cat([x[0], const[0]], dim=-1)
        h, state = self._cell(inp, inp @ self.weight_ih.t(), state, None, None)
        return h[None], state


def make_layer(kind: str, input_size: int, hidden_size: int, **kw) -> RecurrentLayer:
    """Build a cell by name (``lstm``, ``layer_norm``, ``hyper``); ``hyper_size``, ``embed_size``,
    ``hyper_dropout`` and ``scale_init`` only apply to ``hyper`` and ``impl`` only to ``lstm``."""
    if kind != "hyper":
        for name in ("hyper_size", "embed_size", "hyper_dropout", "scale_init"):
            kw.pop(name, None)
    if kind == "lstm":
        return LSTMLayer(input_size, hidden_size, **kw)
    kw.pop("impl", None)
    if kind == "layer_norm":
        return LayerNormLSTMLayer(input_size, hidden_size, **kw)
    if kind == "hyper":
        return HyperLSTMLayer(input_size, hidden_size, **kw)
    raise ValueError(f"unknown cell {kind!r}; known: {CELL_TYPES}")
