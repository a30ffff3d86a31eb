"""The comparison's PNG plots (matplotlib, no display needed)."""
from pathlib import Path
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def f1_against_time(rows: List[Dict], logs: Dict[str, List[Dict]], path: Path) -> Path:
    """Dev entity F1 at each evaluation against training wall time, one curve per
    system (dots: test F1 at the end of training)."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for row in rows:
        log = [line for line in logs.get(row["system"], []) if "ents_f" in (line.get("scores") or {})]
        log = [line for line in log if line["step"] > 0 or line.get("epoch", 0) > 0]  # not the untrained step 0
        xs = [line["seconds"] / 60 for line in log]
        ys = [100 * line["scores"]["ents_f"] for line in log]
        line, = ax.plot(xs, ys, marker=".", linewidth=1.2, label=row["label"])
        if row.get("train_seconds"):
            ax.scatter([row["train_seconds"] / 60], [100 * row["ents_f"]], color=line.get_color(), s=60,
                       marker="*", zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("training wall time (minutes, log scale)")
    ax.set_ylabel("entity F1 (lines: dev during training; stars: test)")
    ax.set_ylim(bottom=max(0, ax.get_ylim()[0]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("GMB: entity F1 against training time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loss_curves(rows: List[Dict], logs: Dict[str, List[Dict]], path: Path) -> Optional[Path]:
    """Entity loss per token: per epoch, train and dev, for the frozen-encoder
    runs (the paper's Fig. 2); train loss along the fine-tuning runs, with
    posattn_ner's cross-entropy and spaCy ner's own loss in separate panels."""
    cached = [r for r in rows if r.get("kind") == "cached" and logs.get(r["system"])]
    tuned = [r for r in rows if r.get("kind") == "spacy" and logs.get(r["system"])]
    if not cached and not tuned:
        return None
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    for row in cached:
        log = logs[row["system"]]
        epochs = [line["epoch"] for line in log]
        for key, style in (("train_loss_per_token", "-"), ("dev_loss_per_token", "--")):
            values = [sum(v for k, v in line[key].items() if k != "tagger") for line in log]
            left.plot(epochs, values, style, marker="o", label=f"{row['system']} {key.split('_')[0]}")
    left.set_xlabel("epoch")
    left.set_ylabel("posattn_ner cross-entropy per token")
    left.set_title("Frozen encoder, cached features")
    # posattn_ner's loss is a cross-entropy; spaCy's transition ner has a loss of
    # its own (not a cross-entropy): they get separate panels, never one axis.
    for ax, component in ((middle, "posattn_ner"), (right, "ner")):
        for row in tuned:
            xs, ys, last_words = [], [], 0
            for line in logs[row["system"]]:
                words = line.get("words") or 0
                loss = line.get("losses", {}).get(component)
                if loss is not None and words > last_words and line["step"] > 0:
                    xs.append(line["step"])
                    ys.append(loss / (words - last_words))
                last_words = words
            if xs:
                ax.plot(xs, ys, marker=".", label=row["system"])
        ax.set_xlabel("step")
        ax.set_yscale("log")
    middle.set_ylabel("train cross-entropy per word since last evaluation")
    middle.set_title("posattn_ner, fine-tuned (spacy train)")
    right.set_ylabel("train loss per word since last evaluation")
    right.set_title("spaCy's ner (its own transition loss, not cross-entropy)")
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_matrix(row: Dict, path: Path) -> Path:
    """Token confusion of entity types (rows: gold, columns: predicted), as
    shares of each gold row; counts printed in the cells (the paper's Fig. 3)."""
    counts = row["type_confusion"]
    labels = sorted(set(counts) | {p for r in counts.values() for p in r}, key=lambda t: (t == "O", t))
    matrix = [[counts.get(g, {}).get(p, 0) for p in labels] for g in labels]
    shares = [[c / max(sum(r), 1) for c in r] for r in matrix]
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted type")
    ax.set_ylabel("gold type")
    for i, r in enumerate(matrix):
        for j, c in enumerate(r):
            if c:
                ax.text(j, i, f"{c}", ha="center", va="center", fontsize=7,
                        color="white" if shares[i][j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="share of the gold type's tokens")
    ax.set_title(f"Entity types of the test tokens: {row.get('system', row['label'])}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
