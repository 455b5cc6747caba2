"""Deep Learning from Scratch 2, chapter 8: seq2seq with attention learns to write dates
in one format (``AttentionSeq2seq`` on ``date.txt``), and where it looks.

As the book's ``ch08/train.py``: the bundled ``date.txt`` (45,000 training and 5,000 test
dates, the book's split), questions reversed, word vectors of 16, an LSTM of 256, Adam,
batches of 128, gradients clipped to norm 5, 10 epochs.  ``xpnet.book2.attention.TimeAttention``
weighs every encoder state at each decoder step.  After each epoch, the accuracy of whole
answers on the test dates.  Plots the accuracy and, as ``ch08/visualize_attention.py``, the
attention map of a test date.

    python examples/book2_ch08_attention.py
    python examples/book2_ch08_attention.py --epochs 1 --train-size 2000 --test-size 200   # quick
"""

import _common
import numpy as np  # host-side plotting only
from _book2_models import Seq2seq, accuracy

from xpnet.backend import to_numpy
from xpnet.book2.optimizer import Adam
from xpnet.book2.trainer import Trainer
from xpnet.book2.util import eval_seq2seq
from xpnet.datasets import sequence


def main():
    p = _common.parser(__doc__, epochs=10, mnist=False)
    p.add_argument("--hidden-size", type=int, default=256, help="LSTM size")
    p.add_argument("--train-size", type=int, default=None, metavar="N", help="use only the first N training dates")
    p.add_argument("--test-size", type=int, default=None, metavar="N", help="use only the first N test dates")
    args = p.parse_args()
    device = _common.device(args)

    (x_train, t_train), (x_test, t_test) = sequence.load_data("date.txt")
    char_to_id, id_to_char = sequence.get_vocab()
    x_train, x_test = x_train[:args.train_size, ::-1], x_test[:args.test_size, ::-1]
    t_train, t_test = t_train[:args.train_size], t_test[:args.test_size]
    print(f"AttentionSeq2seq: {len(x_train)} training dates, {len(x_test)} test dates, vocabulary {len(char_to_id)}")

    model = Seq2seq(len(char_to_id), 16, args.hidden_size, attention=True, seed=args.seed)
    trainer = Trainer(model, Adam(), device=device, seed=args.seed)
    acc_list = []
    for epoch in range(args.epochs):
        trainer.fit(x_train, t_train, max_epoch=1, batch_size=128, max_grad=5.0)
        for i in range(3):
            eval_seq2seq(model, device.asarray(x_test[[i]]), t_test[[i]], id_to_char, verbose=True, is_reverse=True)
        acc_list.append(accuracy(model, x_test, t_test, device))
        print("val acc %.3f%%" % (acc_list[-1] * 100))

    fig = _common.figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(range(1, len(acc_list) + 1), acc_list, marker="o")
    ax.set(xlabel="epochs", ylabel="accuracy", ylim=(-0.05, 1.05), title="AttentionSeq2seq on dates")
    _common.save(fig, args, "book2_ch08_accuracy.png")

    # the attention map of the first test date: answer characters (rows) over question characters
    model.forward(device.asarray(x_test[:1]), device.asarray(t_test[:1]))
    weights = np.stack([to_numpy(w)[0] for w in model.decoder.attention.attention_weights])[:, ::-1]
    question = [id_to_char[int(c)] for c in x_test[0, ::-1]]
    answer = [id_to_char[int(c)] for c in t_test[0, 1:]]
    fig = _common.figure(8, 3.5)
    ax = fig.add_subplot()
    ax.pcolormesh(weights, cmap="gray")  # brighter: more weight, scaled to this map as the book's
    ax.set_xticks(np.arange(len(question)) + 0.5, question, fontsize=8)
    ax.set_yticks(np.arange(len(answer)) + 0.5, answer, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="question", ylabel="answer", title="attention weights")
    _common.save(fig, args, "book2_ch08_attention.png")
    _common.result(val_acc=acc_list[-1], final_loss=trainer.loss_list[-1], epochs=args.epochs)


if __name__ == "__main__":
    main()
