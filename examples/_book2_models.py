"""The second book's chapter 5-8 models, built from ``xpnet.book2.time_layers``: what the
examples of those chapters share.

Each model follows the book's interface (``forward(xs, ts)`` returns the loss, ``backward()``
fills ``grads``, ``params``/``grads`` lists, ``reset_state()``), so the book's ``RnnlmTrainer``
and ``Trainer`` train it.  Weights start on the host (``Generator``); the trainers move them to
``--device``.  Generation here is batched: ``generate`` answers N questions at once, on the device.
"""

from __future__ import annotations

import math

from array_api_compat import array_namespace
import numpy as np  # host-side initial biases only; every computation runs through xpnet

from xpnet.backend import Generator, to_numpy
from xpnet.book2.attention import TimeAttention
from xpnet.book2.time_layers import TimeAffine, TimeDropout, TimeEmbedding, TimeLSTM, TimeRNN, TimeSoftmaxWithLoss


class _Stack:
    """Layers applied in order, then a softmax loss; params and grads are the layers' own lists."""

    def _collect(self, layers):
        self.params, self.grads = [], []
        for layer in layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, xs, ts):
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


def _weights(rng, fan_in, shape):
    """Xavier-scaled normal weights (the book's ``randn(...) / sqrt(fan_in)``)."""
    return rng.normal(shape, scale=1.0 / math.sqrt(fan_in))


class SimpleRnnlm(_Stack):
    """Chapter 5: word vectors, one stateful ``TimeRNN``, scores over the vocabulary."""

    def __init__(self, vocab_size, wordvec_size=100, hidden_size=100, *, seed=None):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rng = Generator(seed)
        self.rnn = TimeRNN(_weights(rng, D, (D, H)), _weights(rng, H, (H, H)), np.zeros(H, np.float32), stateful=True)
        self.layers = [TimeEmbedding(rng.normal((V, D), scale=0.01)), self.rnn,
                       TimeAffine(_weights(rng, H, (H, V)), np.zeros(V, np.float32))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect(self.layers)

    def reset_state(self):
        self.rnn.reset_state()


class Rnnlm(_Stack):
    """Chapter 6: ``layers`` stacked LSTMs; ``better=True`` is ``BetterRnnlm`` (dropout between
    layers, the output layer tied to the word vectors)."""

    def __init__(self, vocab_size, wordvec_size=100, hidden_size=100, *, layers=1, dropout=0.0, tied=False,
                 seed=None):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rng = Generator(seed)
        embed_W = rng.normal((V, D), scale=0.01)
        self.lstms, self.dropouts = [], []
        stack = [TimeEmbedding(embed_W)]
        for k in range(layers):
            if dropout:
                self.dropouts.append(TimeDropout(dropout, rng=rng))
                stack.append(self.dropouts[-1])
            n_in = D if k == 0 else H
            self.lstms.append(TimeLSTM(_weights(rng, n_in, (n_in, 4 * H)), _weights(rng, H, (H, 4 * H)),
                                       np.zeros(4 * H, np.float32), stateful=True))
            stack.append(self.lstms[-1])
        if dropout:
            self.dropouts.append(TimeDropout(dropout, rng=rng))
            stack.append(self.dropouts[-1])
        affine_W = embed_W.T if tied else _weights(rng, H, (H, V))  # tied: one matrix, two uses
        stack.append(TimeAffine(affine_W, np.zeros(V, np.float32)))
        self.layers, self.loss_layer = stack, TimeSoftmaxWithLoss()
        self._collect(stack)

    def forward(self, xs, ts, train_flg=True):
        for layer in self.dropouts:
            layer.train_flg = train_flg
        return super().forward(xs, ts)

    def reset_state(self):
        for lstm in self.lstms:
            lstm.reset_state()


# ------------------------------------------------------------------ chapters 7 and 8


class Encoder:
    """Question ids ``(N, T)`` -> the last LSTM state ``(N, H)`` (``hs`` with ``all_states``)."""

    def __init__(self, rng, V, D, H, all_states=False):
        self.embed = TimeEmbedding(rng.normal((V, D), scale=0.01))
        self.lstm = TimeLSTM(_weights(rng, D, (D, 4 * H)), _weights(rng, H, (H, 4 * H)), np.zeros(4 * H, np.float32))
        self.all_states = all_states
        self.params, self.grads = self.embed.params + self.lstm.params, self.embed.grads + self.lstm.grads

    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs if self.all_states else self.hs[:, -1, :]

    def backward(self, dh):
        xp = array_namespace(dh)
        if not self.all_states:  # only the last state was used: the others get no gradient
            zeros = xp.zeros_like(self.hs[:, :-1, :])
            dh = xp.concat([zeros, dh[:, None, :]], axis=1)
        self.embed.backward(self.lstm.backward(dh))


class Decoder:
    """Answer ids and the encoder's state -> scores ``(N, T, V)``.

    ``peeky``: the state also joins every step's input and output (chapter 7's PeekyDecoder);
    ``attention``: each step reads a weighted sum of all encoder states (chapter 8)."""

    def __init__(self, rng, V, D, H, peeky=False, attention=False):
        self.peeky, self.attention = peeky, TimeAttention() if attention else None
        n_in, n_out = D + H * peeky, H + H * (peeky or attention)
        self.embed = TimeEmbedding(rng.normal((V, D), scale=0.01))
        self.lstm = TimeLSTM(_weights(rng, n_in, (n_in, 4 * H)), _weights(rng, H, (H, 4 * H)),
                             np.zeros(4 * H, np.float32), stateful=True)
        self.affine = TimeAffine(_weights(rng, n_out, (n_out, V)), np.zeros(V, np.float32))
        layers = [self.embed, self.lstm, self.affine]
        self.params = sum((layer.params for layer in layers), [])
        self.grads = sum((layer.grads for layer in layers), [])

    def forward(self, xs, enc):
        xp = array_namespace(enc)
        h = enc[:, -1, :] if self.attention else enc
        self.lstm.set_state(h)
        x = self.embed.forward(xs)
        N, T = x.shape[:2]
        hs = xp.broadcast_to(h[:, None, :], (N, T, h.shape[-1])) if self.peeky else None
        out = self.lstm.forward(xp.concat([hs, x], axis=2) if self.peeky else x)
        if self.attention:
            out = xp.concat([self.attention.forward(enc, out), out], axis=2)
        elif self.peeky:
            out = xp.concat([hs, out], axis=2)
        return self.affine.forward(out)

    def backward(self, dscore):
        xp = array_namespace(dscore)
        dout = self.affine.backward(dscore)
        H = self.lstm.H
        denc = None
        if self.attention:
            dc, dout = dout[:, :, :H], dout[:, :, H:]
            denc, ddec = self.attention.backward(dc)
            dout = dout + ddec
        elif self.peeky:
            dh_out, dout = dout[:, :, :H], dout[:, :, H:]
        dx = self.lstm.backward(dout)
        if self.peeky:
            dh_in, dx = dx[:, :, :H], dx[:, :, H:]
        self.embed.backward(dx)
        dh = self.lstm.dh + (xp.sum(dh_out, axis=1) + xp.sum(dh_in, axis=1) if self.peeky else 0)
        if self.attention:
            zeros = xp.zeros_like(denc[:, :-1, :])
            return denc + xp.concat([zeros, dh[:, None, :]], axis=1)
        return dh

    def generate(self, enc, start_ids, sample_size):
        """Greedy answers ``(N, sample_size)`` for a batch, all on the device."""
        xp = array_namespace(enc)
        h = enc[:, -1, :] if self.attention else enc
        self.lstm.set_state(h)
        ids, out = xp.reshape(start_ids, (-1, 1)), []
        for _ in range(sample_size):
            x = self.embed.forward(ids)
            step = self.lstm.forward(xp.concat([h[:, None, :], x], axis=2) if self.peeky else x)
            if self.attention:
                step = xp.concat([self.attention.forward(enc, step), step], axis=2)
            elif self.peeky:
                step = xp.concat([h[:, None, :], step], axis=2)
            ids = xp.argmax(self.affine.forward(step), axis=2)
            out.append(ids)
        return xp.concat(out, axis=1)


class Seq2seq:
    """Chapter 7's encoder-decoder (``peeky`` for PeekySeq2seq) and chapter 8's ``attention``."""

    def __init__(self, vocab_size, wordvec_size=16, hidden_size=128, *, peeky=False, attention=False, seed=None):
        rng = Generator(seed)
        V, D, H = vocab_size, wordvec_size, hidden_size
        self.encoder = Encoder(rng, V, D, H, all_states=attention)
        self.decoder = Decoder(rng, V, D, H, peeky=peeky, attention=attention)
        self.softmax = TimeSoftmaxWithLoss()
        self.params = self.encoder.params + self.decoder.params
        self.grads = self.encoder.grads + self.decoder.grads

    def forward(self, xs, ts):
        self.decoder.lstm.reset_state()
        scores = self.decoder.forward(ts[:, :-1], self.encoder.forward(xs))
        return self.softmax.forward(scores, ts[:, 1:])

    def backward(self, dout=1):
        self.encoder.backward(self.decoder.backward(self.softmax.backward(dout)))

    def generate(self, xs, start_ids, sample_size):
        return self.decoder.generate(self.encoder.forward(xs), start_ids, sample_size)


def accuracy(model, x, t, device, batch_size=1000):
    """Share of the questions ``x`` whose whole answer ``t[:, 1:]`` the model generates exactly."""
    correct = 0
    for start in range(0, len(x), batch_size):
        xs, ts = device.asarray(x[start:start + batch_size]), t[start:start + batch_size]
        guess = to_numpy(model.generate(xs, device.asarray(ts[:, 0]), ts.shape[1] - 1))
        correct += int(np.sum(np.all(guess == ts[:, 1:], axis=1)))
    return correct / len(x)
