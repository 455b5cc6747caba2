"""Deep Learning from Scratch 2, chapter 7: seq2seq learns addition (``Seq2seq``; with the
book's two improvements, ``--reverse`` the question and ``--peeky``, ``PeekySeq2seq``).

As the book's ``ch07/train_seq2seq.py``: the bundled ``addition.txt`` (45,000 training and
5,000 test sums, split by ``xpnet.datasets.sequence`` as the book splits them), word vectors
of 16, an LSTM of 128, Adam, batches of 128, gradients clipped to norm 5.  After each epoch,
the accuracy of whole answers on the test sums (generated in batches on the device) and
three of them printed as the book's ``eval_seq2seq`` prints them.  Plots the accuracy.

    python examples/book2_ch07_seq2seq.py --reverse --peeky          # 25 epochs, as the book
    python examples/book2_ch07_seq2seq.py --reverse --peeky --epochs 1 --train-size 2000  # quick
"""

import _common
from _book2_models import Seq2seq, accuracy

from xpnet.book2.optimizer import Adam
from xpnet.book2.trainer import Trainer
from xpnet.book2.util import eval_seq2seq
from xpnet.datasets import sequence


def main():
    p = _common.parser(__doc__, epochs=25, mnist=False)
    p.add_argument("--reverse", action="store_true", help="feed each question backwards (the book's first trick)")
    p.add_argument("--peeky", action="store_true", help="PeekySeq2seq: the encoder's state at every decoder step")
    p.add_argument("--hidden-size", type=int, default=128, help="LSTM size")
    p.add_argument("--train-size", type=int, default=None, metavar="N", help="use only the first N training sums")
    p.add_argument("--test-size", type=int, default=None, metavar="N", help="use only the first N test sums")
    args = p.parse_args()
    device = _common.device(args)

    (x_train, t_train), (x_test, t_test) = sequence.load_data("addition.txt")
    char_to_id, id_to_char = sequence.get_vocab()
    if args.reverse:
        x_train, x_test = x_train[:, ::-1], x_test[:, ::-1]
    x_train, t_train = x_train[:args.train_size], t_train[:args.train_size]
    x_test, t_test = x_test[:args.test_size], t_test[:args.test_size]
    name = ("Peeky" if args.peeky else "") + "Seq2seq" + (" (reversed)" if args.reverse else "")
    print(f"{name}: {len(x_train)} training sums, {len(x_test)} test sums, vocabulary {len(char_to_id)}")

    model = Seq2seq(len(char_to_id), 16, args.hidden_size, peeky=args.peeky, seed=args.seed)
    trainer = Trainer(model, Adam(), device=device, seed=args.seed)
    acc_list = []
    for epoch in range(args.epochs):
        trainer.fit(x_train, t_train, max_epoch=1, batch_size=128, max_grad=5.0)
        for i in range(3):
            eval_seq2seq(model, device.asarray(x_test[[i]]), t_test[[i]], id_to_char, verbose=True,
                         is_reverse=args.reverse)
        acc_list.append(accuracy(model, x_test, t_test, device))
        print("val acc %.3f%%" % (acc_list[-1] * 100))

    fig = _common.figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(range(1, len(acc_list) + 1), acc_list, marker="o")
    ax.set(xlabel="epochs", ylabel="accuracy", ylim=(-0.05, 1.05), title=name)
    _common.save(fig, args, "book2_ch07_accuracy.png")
    _common.result(val_acc=acc_list[-1], final_loss=trainer.loss_list[-1], epochs=args.epochs)


if __name__ == "__main__":
    main()
