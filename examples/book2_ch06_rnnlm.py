"""Deep Learning from Scratch 2, chapter 6: an LSTM language model (``Rnnlm``), or with
``--better`` the book's ``BetterRnnlm`` (two LSTM layers, dropout 0.5, tied weights).

The book's ``ch06/train_rnnlm.py`` trains on PTB; offline, the corpus here is the bundled
*Alice's Adventures in Wonderland*, its first 90% for training and the rest held out
(``--ptb``: PTB's train and test splits, downloaded once).  As the book: batches of 20,
35 words per step, SGD lr 20, gradients clipped to norm 0.25, ``RnnlmTrainer``; then
``eval_perplexity`` on the held-out words.  Plots the training perplexity.

    python examples/book2_ch06_rnnlm.py
    python examples/book2_ch06_rnnlm.py --epochs 1 --corpus-size 5000 --hidden-size 32   # quick
"""

import _common
from _book2_models import Rnnlm

from xpnet.book2.optimizer import SGD
from xpnet.book2.trainer import RnnlmTrainer
from xpnet.book2.util import eval_perplexity


def load(args):
    """``(train, test, vocab_size, name)``: Alice split 90/10, or PTB's own splits."""
    from xpnet.datasets import DatasetError, ptb, text
    try:
        if args.ptb:
            train, word_to_id, _ = ptb.load_data("train")
            test, _, _ = ptb.load_data("test")
            return train[:args.corpus_size], test, len(word_to_id), "PTB"
        corpus, word_to_id, _ = text.load_corpus()
    except DatasetError as exc:
        _common.fail(f"error: {str(exc).splitlines()[0]} (without --ptb the bundled corpus needs no download)")
    cut = len(corpus) * 9 // 10
    return corpus[:cut][:args.corpus_size], corpus[cut:], len(word_to_id), "Alice"


def main():
    p = _common.parser(__doc__, epochs=4, mnist=False)
    p.add_argument("--better", action="store_true", help="BetterRnnlm: 2 LSTM layers, dropout 0.5, tied weights")
    p.add_argument("--hidden-size", type=int, default=None, help="word vector and LSTM size (100; 650 with --better)")
    p.add_argument("--corpus-size", type=int, default=None, metavar="N", help="train on the first N words")
    p.add_argument("--ptb", action="store_true", help="PTB (downloaded once) instead of the bundled text")
    args = p.parse_args()
    device = _common.device(args)

    train, test, vocab_size, name = load(args)
    size = args.hidden_size or (650 if args.better else 100)
    print(f"corpus: {name}, {len(train)} training words, {len(test)} held out, vocabulary {vocab_size}")
    options = dict(layers=2, dropout=0.5, tied=True) if args.better else {}
    model = Rnnlm(vocab_size, size, size, seed=args.seed, **options)
    trainer = RnnlmTrainer(model, SGD(lr=20.0), device=device, seed=args.seed)
    trainer.fit(train[:-1], train[1:], args.epochs, batch_size=20, time_size=35, max_grad=0.25,
                eval_interval=20)
    model.reset_state()
    test_ppl = eval_perplexity(model, test)
    print("test perplexity: ", test_ppl)

    fig = _common.figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(trainer.ppl_list)
    ax.set(xlabel=f"iterations (x{trainer.eval_interval})", ylabel="perplexity",
           title=f"{'BetterRnnlm' if args.better else 'Rnnlm'} on {name}")
    _common.save(fig, args, "book2_ch06_perplexity.png")
    _common.result(first_ppl=trainer.ppl_list[0], final_ppl=trainer.ppl_list[-1], test_ppl=test_ppl,
                   vocab=vocab_size)


if __name__ == "__main__":
    main()
