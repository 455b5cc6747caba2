"""Deep Learning from Scratch 2, chapter 5: a simple RNN language model (``SimpleRnnlm``).

The book's ``ch05/train.py`` trains on the first 1,000 words of PTB (a download); here the
corpus is the first 1,000 words of the bundled *Alice's Adventures in Wonderland*, so it runs
offline (``--ptb`` takes PTB, downloading it once).  The model is the book's: word vectors,
one stateful ``TimeRNN`` (truncated BPTT over ``--time-size`` words), scores over the
vocabulary, ``TimeSoftmaxWithLoss``; SGD lr 0.1, batches of 10, through ``RnnlmTrainer``.
Prints the book's progress lines and plots the perplexity.

    python examples/book2_ch05_simple_rnnlm.py            # 100 epochs, as the book
    python examples/book2_ch05_simple_rnnlm.py --epochs 5 # quick
"""

import _common
from _book2_models import SimpleRnnlm

from xpnet.book2.optimizer import SGD
from xpnet.book2.trainer import RnnlmTrainer


def load_corpus(args):
    """The first ``--corpus-size`` words of Alice (bundled) or PTB (``--ptb``)."""
    from xpnet.datasets import DatasetError, ptb, text
    try:
        corpus, _, _ = ptb.load_data("train") if args.ptb else text.load_corpus()
    except DatasetError as exc:
        _common.fail(f"error: {str(exc).splitlines()[0]} (without --ptb the bundled corpus needs no download)")
    return corpus[:args.corpus_size], "PTB" if args.ptb else "Alice"


def main():
    p = _common.parser(__doc__, epochs=100, mnist=False)
    p.add_argument("--corpus-size", type=int, default=1000, help="train on the first N words")
    p.add_argument("--ptb", action="store_true", help="PTB (downloaded once) instead of the bundled text")
    p.add_argument("--time-size", type=int, default=5, help="words per truncated-BPTT step")
    args = p.parse_args()
    device = _common.device(args)

    corpus, name = load_corpus(args)
    vocab_size = int(corpus.max()) + 1
    print(f"corpus: {name}, {len(corpus)} words, vocabulary {vocab_size}")
    model = SimpleRnnlm(vocab_size, 100, 100, seed=args.seed)
    trainer = RnnlmTrainer(model, SGD(lr=0.1), device=device, seed=args.seed)
    trainer.fit(corpus[:-1], corpus[1:], args.epochs, batch_size=10, time_size=args.time_size)

    fig = _common.figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(trainer.ppl_list)
    ax.set(xlabel=f"iterations (x{trainer.eval_interval})", ylabel="perplexity", title=f"SimpleRnnlm on {name}")
    _common.save(fig, args, "book2_ch05_perplexity.png")
    _common.result(first_ppl=trainer.ppl_list[0], final_ppl=trainer.ppl_list[-1], vocab=vocab_size)


if __name__ == "__main__":
    main()
