"""Deep Learning from Scratch 2, chapter 2: word vectors by counting.

First the book's one-sentence corpus ("You say goodbye and I say hello."): its
co-occurrence matrix, the cosine similarity of "you" and "i", and PPMI.  Then the
same method on a real text, the bundled *Alice's Adventures in Wonderland* (no
network needed; PTB needs a download): co-occurrences in a window of 2, PPMI, and
SVD down to 100 dimensions; the nearest neighbours of a few words are printed.
The SVD runs in the arrays' own namespace when it has ``linalg.svd`` (NumPy, CuPy,
torch, array_api_strict), else on the host.  Plots the small corpus's words in 2-D.

    python examples/book2_ch02_count_based.py
"""

import _common
import numpy as np
from xpnet.backend import to_numpy
from xpnet.book2.util import cos_similarity, create_co_matrix, most_similar, ppmi, preprocess
from xpnet.datasets import text

QUERIES = ("alice", "queen", "said", "little")


def svd(M, device):
    """``U, S`` of ``M``: on its device when its namespace has ``linalg.svd``, else on the host."""
    xp = device.xp
    if hasattr(xp, "linalg") and hasattr(xp.linalg, "svd"):
        U, S, _ = xp.linalg.svd(M, full_matrices=False)
        return U, S
    U, S, _ = np.linalg.svd(to_numpy(M), full_matrices=False)
    return device.asarray(U), device.asarray(S)


def main():
    p = _common.parser(__doc__, mnist=False)
    p.add_argument("--window-size", type=int, default=2, help="context words on each side")
    p.add_argument("--wordvec-size", type=int, default=100, help="dimensions kept after the SVD")
    p.add_argument("--max-words", type=int, default=None, metavar="N",
                   help="use only the first N words of the corpus (default: all 28,826)")
    args = p.parse_args()
    device = _common.device(args)

    with device.activate():
        corpus, word_to_id, id_to_word = preprocess("You say goodbye and I say hello.")
        C = create_co_matrix(device.asarray(corpus), len(word_to_id))
        print("co-occurrence matrix of the book's sentence:\n", to_numpy(C))
        sim = float(cos_similarity(C[word_to_id["you"], :], C[word_to_id["i"], :]))
        print(f"cos_similarity(you, i) = {sim:.4f}")
        W = ppmi(C)
        print("PPMI:\n", np.round(to_numpy(W), 3))
        U, _ = svd(W, device)
        small = to_numpy(U[:, :2])

        corpus, word_to_id, id_to_word = text.load_corpus()
        corpus = corpus[:args.max_words]
        vocab = {i: id_to_word[i] for i in range(int(corpus.max()) + 1)}
        word_to_id = {w: i for i, w in vocab.items()}
        print(f"\ncorpus: Alice's Adventures in Wonderland, {len(corpus)} words, vocabulary {len(vocab)}")
        C = create_co_matrix(device.asarray(corpus), len(vocab), window_size=args.window_size)
        W = ppmi(C, verbose=True)
        U, S = svd(W, device)
        word_vecs = U[:, :args.wordvec_size]
        neighbours = {q: most_similar(q, word_to_id, vocab, word_vecs, top=5) for q in QUERIES}

    fig = _common.figure(5, 4)
    ax = fig.add_subplot()
    ax.scatter(small[:, 0], small[:, 1], alpha=0.5)
    for word, i in preprocess("You say goodbye and I say hello.")[1].items():
        ax.annotate(word, (small[i, 0], small[i, 1]))
    ax.set(title="the book's sentence: words by the first two SVD dimensions")
    _common.save(fig, args, "book2_ch02_svd.png")
    found = {f"nn_{q}": n[0][0] for q, n in neighbours.items() if n}
    _common.result(sim_you_i=sim, vocab=len(vocab), words=len(corpus),
                   top_singular=float(to_numpy(S[0])), **found)


if __name__ == "__main__":
    main()
