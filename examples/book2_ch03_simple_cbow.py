"""Deep Learning from Scratch 2, chapter 3: the simple CBOW model learns word vectors.

The book's ``ch03/train.py``: the sentence "You say goodbye and I say hello.", a
window of 1, contexts and targets as one-hot vectors, two input MatMul layers that
share ``W_in``, a MatMul out and SoftmaxWithLoss; hidden size 5, Adam, batches of 3,
1000 epochs.  Prints each word's vector (a row of ``W_in``) and plots the loss.

    python examples/book2_ch03_simple_cbow.py
"""

import _common
import numpy as np
from xpnet.backend import Generator, to_numpy
from xpnet.book2.layers import MatMul, SoftmaxWithLoss
from xpnet.book2.optimizer import Adam
from xpnet.book2.trainer import Trainer
from xpnet.book2.util import convert_one_hot, create_contexts_target, preprocess


class SimpleCBOW:
    """The mean of the two context words' rows of ``W_in``, scored against every word."""

    def __init__(self, vocab_size, hidden_size, *, seed=None):
        rng = Generator(seed)
        W_in = rng.normal((vocab_size, hidden_size), scale=0.01)
        W_out = rng.normal((hidden_size, vocab_size), scale=0.01)
        self.in_layer0 = MatMul(W_in)
        self.in_layer1 = MatMul(W_in)
        self.out_layer = MatMul(W_out)
        self.loss_layer = SoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in (self.in_layer0, self.in_layer1, self.out_layer):
            self.params += layer.params
            self.grads += layer.grads
        self.word_vecs = W_in

    def forward(self, contexts, target):
        h0 = self.in_layer0.forward(contexts[:, 0])
        h1 = self.in_layer1.forward(contexts[:, 1])
        score = self.out_layer.forward((h0 + h1) * 0.5)
        return self.loss_layer.forward(score, target)

    def backward(self, dout=1):
        da = self.out_layer.backward(self.loss_layer.backward(dout))
        da = da * 0.5
        self.in_layer1.backward(da)
        self.in_layer0.backward(da)


def main():
    p = _common.parser(__doc__, epochs=1000, mnist=False)
    p.add_argument("--hidden-size", type=int, default=5, help="dimensions of a word vector")
    p.add_argument("--batch-size", type=int, default=3, help="contexts per training step")
    args = p.parse_args()
    device = _common.device(args)

    corpus, word_to_id, id_to_word = preprocess("You say goodbye and I say hello.")
    contexts, target = create_contexts_target(corpus, window_size=1)
    contexts = convert_one_hot(contexts, len(word_to_id)).astype(np.float32)
    target = convert_one_hot(target, len(word_to_id))

    model = SimpleCBOW(len(word_to_id), args.hidden_size, seed=args.seed)
    trainer = Trainer(model, Adam(), device=device, seed=args.seed)
    trainer.fit(contexts, target, max_epoch=args.epochs, batch_size=args.batch_size)  # a line per epoch

    word_vecs = to_numpy(model.word_vecs)
    for word_id, word in id_to_word.items():
        print(f"{word:>8} {np.array2string(word_vecs[word_id], precision=3)}")
    fig = _common.figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(trainer.loss_list)
    ax.set(xlabel="epoch (2 iterations)", ylabel="loss",
           title="simple CBOW on the book's sentence")
    _common.save(fig, args, "book2_ch03_loss.png")
    _common.result(first_loss=trainer.loss_list[0], final_loss=trainer.loss_list[-1], vocab=len(word_to_id))


if __name__ == "__main__":
    main()
