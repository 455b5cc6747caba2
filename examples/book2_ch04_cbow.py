"""Deep Learning from Scratch 2, chapter 4: CBOW with Embedding layers and negative sampling.

The book's ``ch04/train.py`` trains on PTB (a download); here the corpus is the
bundled *Alice's Adventures in Wonderland* (28,826 words, vocabulary 2,607), so it
runs offline.  The model is the book's ``CBOW``: ``2 * window`` Embedding layers
sharing ``W_in``, their mean scored by ``NegativeSamplingLoss`` (the true word and 5
words drawn by the unigram distribution to the 0.75), Adam, batches of 100.  The
sampler draws on the training device.  Prints the nearest neighbours of a few words
and plots the loss.

    python examples/book2_ch04_cbow.py
"""

import _common
from xpnet.backend import Generator
from xpnet.book2.layers import Embedding
from xpnet.book2.negative_sampling import NegativeSamplingLoss
from xpnet.book2.optimizer import Adam
from xpnet.book2.trainer import Trainer
from xpnet.book2.util import create_contexts_target, most_similar
from xpnet.datasets import text

QUERIES = ("alice", "queen", "said", "head")


class CBOW:
    """The mean of the context words' rows of ``W_in`` predicts the target word."""

    def __init__(self, vocab_size, hidden_size, window_size, corpus, *, seed=None):
        rng = Generator(seed)
        W_in = rng.normal((vocab_size, hidden_size), scale=0.01)
        W_out = rng.normal((vocab_size, hidden_size), scale=0.01)
        self.in_layers = [Embedding(W_in) for _ in range(2 * window_size)]
        self.ns_loss = NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=5, seed=seed)
        self.params, self.grads = [], []
        for layer in self.in_layers + [self.ns_loss]:
            self.params += layer.params
            self.grads += layer.grads
        self.word_vecs = W_in

    def forward(self, contexts, target):
        h = 0
        for i, layer in enumerate(self.in_layers):
            h = h + layer.forward(contexts[:, i])
        h = h * (1 / len(self.in_layers))
        return self.ns_loss.forward(h, target)

    def backward(self, dout=1):
        dout = self.ns_loss.backward(dout)
        dout = dout * (1 / len(self.in_layers))
        for layer in self.in_layers:
            layer.backward(dout)


def main():
    p = _common.parser(__doc__, epochs=10, mnist=False)
    p.add_argument("--window-size", type=int, default=5, help="context words on each side")
    p.add_argument("--hidden-size", type=int, default=100, help="dimensions of a word vector")
    p.add_argument("--batch-size", type=int, default=100, help="contexts per training step")
    p.add_argument("--max-words", type=int, default=None, metavar="N",
                   help="use only the first N words of the corpus (default: all 28,826)")
    args = p.parse_args()
    device = _common.device(args)

    corpus, _, id_to_word = text.load_corpus()
    corpus = corpus[:args.max_words]
    vocab = {i: id_to_word[i] for i in range(int(corpus.max()) + 1)}
    word_to_id = {w: i for i, w in vocab.items()}
    print(f"corpus: Alice's Adventures in Wonderland, {len(corpus)} words, vocabulary {len(vocab)}")
    corpus = device.asarray(corpus)
    with device.activate():
        contexts, target = create_contexts_target(corpus, window_size=args.window_size)

    model = CBOW(len(vocab), args.hidden_size, args.window_size, corpus, seed=args.seed)
    trainer = Trainer(model, Adam(), device=device, seed=args.seed)
    trainer.fit(contexts, target, max_epoch=args.epochs, batch_size=args.batch_size)

    with device.activate():
        neighbours = {q: most_similar(q, word_to_id, vocab, model.word_vecs, top=5) for q in QUERIES}
    fig = _common.figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(trainer.loss_list)
    ax.set(xlabel=f"iterations (x{trainer.eval_interval})", ylabel="loss", title="CBOW with negative sampling")
    _common.save(fig, args, "book2_ch04_loss.png")
    found = {f"nn_{q}": n[0][0] for q, n in neighbours.items() if n}
    _common.result(first_loss=trainer.loss_list[0], final_loss=trainer.loss_list[-1], vocab=len(vocab), **found)


if __name__ == "__main__":
    main()
