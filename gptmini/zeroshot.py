"""Zero-shot (GPT-2) and few-shot (GPT-3) use of a language model: scoring by likelihood, and prompts.

GPT-2's point is that a language model already models P(output | input, task) when the task is written
as text. Two tools cover every evaluation of notebook 10:

* **scoring** - the log-probability of a continuation given a context, summed over the continuation's
  tokens only. Choosing the most likely continuation answers cloze / LAMBADA last words, CBT's 10
  candidates, Winograd pronouns and classification with label words;
* **prompting** - text that makes the task's answer the natural continuation ("TL;DR:", "english =
  french" pairs, "Q: ... A:", a task description with k examples), then sampling or greedy decoding.

Contexts longer than the model's window are cropped from the left (the most recent tokens matter most);
a continuation must fit in the window on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .metrics import perplexity
from .model import GPT
from .utils import eval_mode, pad_right


# ------------------------------------------------------------------------------------------ scoring
@dataclass(frozen=True)
class ContinuationScore:
    """log P(continuation | context) summed over its tokens, their count, and whether greedy decoding
    would have produced exactly this continuation (every token the arg-max)."""

    logprob: float
    n_tokens: int
    greedy: bool

    @property
    def mean_logprob(self) -> float:
        """Per-token average: compares continuations of different lengths more fairly than the sum."""
        return self.logprob / self.n_tokens


def start_ids(tokenizer) -> list[int]:
    """What to condition on when there is no context: the end-of-text token, else a newline."""
    if tokenizer.eos_token_id is not None:
        return [tokenizer.eos_token_id]
    ids = tokenizer.encode("\n")
    if not ids:
        raise ValueError("the tokenizer has no end-of-text token and cannot encode a newline; give a context")
    return ids


@torch.no_grad()
def score_continuations(
    model: GPT,
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    batch_size: int = 32,
) -> list[ContinuationScore]:
    """Score each (context, continuation) pair of token ids, in batches.

    The pair is run as one sequence; the log-probability of continuation token j is read at the position
    just before it. A pair longer than the window keeps its last ``block_size + 1`` tokens (the context
    loses its beginning), so one forward pass scores the whole continuation. Rows are right-padded to the
    longest in the batch and only continuation positions are summed, so padding never counts.
    """
    if len(contexts) != len(continuations):
        raise ValueError(f"{len(contexts)} contexts but {len(continuations)} continuations; pass them in pairs")
    block = model.config.block_size
    rows: list[tuple[list[int], list[int], int]] = []
    for ctx, cont in zip(contexts, continuations, strict=True):
        if len(ctx) == 0:
            raise ValueError("a context needs at least one token; use start_ids(tokenizer) for 'no context'")
        if len(cont) == 0:
            raise ValueError("a continuation needs at least one token to score")
        if len(cont) > block:
            raise ValueError(
                f"a continuation of {len(cont)} tokens does not fit the model's context ({block}); shorten it"
            )
        seq = [int(t) for t in ctx] + [int(t) for t in cont]
        inputs, targets = seq[:-1][-block:], seq[1:][-block:]  # crop the context from the left
        rows.append((inputs, targets, len(cont)))
    scores: list[ContinuationScore] = []
    with eval_mode(model):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            idx, lengths = pad_right([r[0] for r in chunk])
            tgt, _ = pad_right([r[1] for r in chunk])
            positions = torch.arange(idx.size(1))
            n_cont = torch.tensor([r[2] for r in chunk])
            mask = (positions < lengths[:, None]) & (positions >= (lengths - n_cont)[:, None])  # the continuation
            idx, tgt, mask = idx.to(model.device), tgt.to(model.device), mask.to(model.device)
            logits, _ = model(idx)
            logp = F.log_softmax(logits.float(), dim=-1)
            token_lp = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
            hit = logits.argmax(dim=-1) == tgt
            sums = (token_lp * mask).sum(dim=1)
            greedy = (hit | ~mask).all(dim=1)
            for i, (_, _, n) in enumerate(chunk):
                scores.append(ContinuationScore(sums[i].item(), n, bool(greedy[i])))
    return scores


def _move_space(context: str, continuation: str) -> tuple[str, str]:
    """Move trailing spaces of the context to the continuation: BPE spells a word with its leading space."""
    stripped = context.rstrip(" ")
    return stripped, context[len(stripped) :] + continuation


def score_texts(
    model: GPT, tokenizer, contexts: Sequence[str], continuations: Sequence[str], batch_size: int = 32
) -> list[ContinuationScore]:
    """:func:`score_continuations` for strings; an empty context means :func:`start_ids`."""
    ctx_ids, cont_ids = [], []
    for ctx, cont in zip(contexts, continuations, strict=True):
        ctx, cont = _move_space(ctx, cont)
        ctx_ids.append(tokenizer.encode(ctx) or start_ids(tokenizer))
        cont_ids.append(tokenizer.encode(cont))
    return score_continuations(model, ctx_ids, cont_ids, batch_size)


def choose(
    model: GPT, tokenizer, context: str, choices: Sequence[str], normalize: bool = False
) -> tuple[int, list[float]]:
    """(index of the most likely choice, the scores): sums of log-probs, or per-token means if ``normalize``."""
    if not choices:
        raise ValueError("need at least one choice")
    scores = score_texts(model, tokenizer, [context] * len(choices), list(choices))
    values = [s.mean_logprob if normalize else s.logprob for s in scores]
    return max(range(len(values)), key=values.__getitem__), values


# ------------------------------------------------------------------------------- cloze and LAMBADA
def split_last_word(text: str) -> tuple[str, str]:
    """("context", " word"): the last whitespace-separated word, with the space before it, is the target."""
    match = re.search(r"\s*\S+\s*$", text)
    if match is None or not text[: match.start()].strip():
        raise ValueError(f"need a text of at least two words to predict the last one, got {text!r}")
    return text[: match.start()], match.group().rstrip()


def last_word_eval(model: GPT, tokenizer, texts: Sequence[str], batch_size: int = 32) -> dict[str, float]:
    """LAMBADA-style: greedy last-word accuracy and the perplexity of the last words' tokens.

    A word counts as right when greedy decoding from the context would write exactly its tokens. No stop-word
    filter: GPT-2's LAMBADA accuracies in its Table 3 filter stop-words out of the predictions; unfiltered, its
    largest model got 52.66 % (its §3.3).
    """
    if not texts:
        raise ValueError("no texts to evaluate")
    pairs = [split_last_word(text) for text in texts]
    scores = score_texts(model, tokenizer, [c for c, _ in pairs], [w for _, w in pairs], batch_size)
    total = sum(s.logprob for s in scores)
    tokens = sum(s.n_tokens for s in scores)
    return {
        "accuracy": sum(s.greedy for s in scores) / len(scores),
        "perplexity": perplexity(total, tokens),
        "n": len(scores),
    }


def cloze_choice(
    model: GPT, tokenizer, context: str, query: str, choices: Sequence[str], blank: str = "XXXXX"
) -> tuple[int, list[float]]:
    """CBT-style: fill ``blank`` in ``query`` with each choice (10 in CBT) and pick the most likely.

    As in GPT-2, a choice is scored together with the rest of the sentence after it:
    log P(choice, rest of query | context, query up to the blank).
    """
    if query.count(blank) != 1:
        raise ValueError(f"the query must contain the blank {blank!r} exactly once")
    before, after = query.split(blank)
    prefix = context + before
    scores = score_texts(model, tokenizer, [prefix] * len(choices), [c + after for c in choices])
    values = [s.logprob for s in scores]
    return max(range(len(values)), key=values.__getitem__), values


@dataclass(frozen=True)
class WinogradScores:
    """Full scoring: log P(whole sentence); partial: log P(words after the candidate | up to the candidate)."""

    full: list[float]
    partial: list[float]

    @property
    def full_choice(self) -> int:
        return max(range(len(self.full)), key=self.full.__getitem__)

    @property
    def partial_choice(self) -> int:
        return max(range(len(self.partial)), key=self.partial.__getitem__)


def winograd(model: GPT, tokenizer, sentence: str, candidates: Sequence[str], placeholder: str = "_") -> WinogradScores:
    """Winograd-style pronoun resolution by substitution (Trinh & Le, 2018; used by GPT-2).

    ``sentence`` has the pronoun replaced by ``placeholder``, e.g. "The trophy does not fit in the
    suitcase because _ is too big." Each candidate is put in its place; *full* scoring compares the whole
    sentences, *partial* scoring only the words after the candidate, which then cannot profit from one
    candidate simply being a more common word.
    """
    if sentence.count(placeholder) != 1:
        raise ValueError(f"the sentence must contain the placeholder {placeholder!r} exactly once")
    before, after = sentence.split(placeholder)
    if not after.strip():
        raise ValueError("partial scoring needs words after the placeholder")
    full = score_texts(model, tokenizer, [""] * len(candidates), [before + c + after for c in candidates])
    partial = score_texts(model, tokenizer, [before + c for c in candidates], [after] * len(candidates))
    return WinogradScores([s.logprob for s in full], [s.logprob for s in partial])


# ------------------------------------------------------------------------- zero-shot classification
def classify_by_likelihood(
    model: GPT,
    tokenizer,
    texts: Sequence[str],
    labels: Sequence[str],
    template: str = "{text}\nAnswer:",
    label_format: str = " {label}",
    normalize: bool = False,
) -> tuple[list[int], torch.Tensor]:
    """Pick, for each text, the label word the model finds most likely after the filled-in template.

    Returns the predicted label indices and the (N, L) score matrix.
    """
    if not labels:
        raise ValueError("need at least one label")
    if "{text}" not in template:
        raise ValueError("the template must contain '{text}' where the input goes")
    contexts, conts = [], []
    for text in texts:
        prompt = template.format(text=text)
        for label in labels:
            contexts.append(prompt)
            conts.append(label_format.format(label=label))
    scores = score_texts(model, tokenizer, contexts, conts)
    values = torch.tensor([s.mean_logprob if normalize else s.logprob for s in scores]).view(len(texts), len(labels))
    return values.argmax(dim=1).tolist(), values


@torch.no_grad()
def mean_hidden_states(model: GPT, tokenizer, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """(N, C): each text's final hidden states averaged over its tokens (the last ``block_size`` of them)."""
    if not texts:
        raise ValueError("no texts to represent")
    block = model.config.block_size
    ids = [(tokenizer.encode(text) or start_ids(tokenizer))[-block:] for text in texts]
    out = []
    with eval_mode(model):
        for start in range(0, len(ids), batch_size):
            idx, lengths = pad_right(ids[start : start + batch_size])
            x = model.hidden_states(idx.to(model.device))
            mask = (torch.arange(idx.size(1)) < lengths[:, None]).unsqueeze(-1).to(x.device, torch.float32)
            out.append(((x.float() * mask).sum(dim=1) / mask.sum(dim=1)).cpu())
    return torch.cat(out)


def classify_by_similarity(
    model: GPT, tokenizer, texts: Sequence[str], label_texts: Sequence[str | Sequence[str]]
) -> tuple[list[int], torch.Tensor]:
    """Pick the label whose representation is closest (cosine) to the text's mean hidden state.

    A label is described by a string (e.g. its name) or a list of strings whose representations are
    averaged. Returns predicted indices and the (N, L) cosine similarities.
    """
    if not label_texts:
        raise ValueError("need at least one label")
    reps = mean_hidden_states(model, tokenizer, texts)
    label_reps = []
    for desc in label_texts:
        group = [desc] if isinstance(desc, str) else list(desc)
        label_reps.append(mean_hidden_states(model, tokenizer, group).mean(dim=0))
    sims = F.cosine_similarity(reps.unsqueeze(1), torch.stack(label_reps).unsqueeze(0), dim=-1)
    return sims.argmax(dim=1).tolist(), sims


# ------------------------------------------------------------------------------------------ prompts
def tldr_prompt(article: str) -> str:
    """GPT-2's summarisation prompt: the article, then "TL;DR:" on a new line."""
    return f"{article.rstrip()}\nTL;DR:"


def translation_prompt(pairs: Sequence[tuple[str, str]], sentence: str) -> str:
    """GPT-2's translation prompt: "english sentence = french sentence" lines, then "english sentence =" at the end."""
    lines = [f"{en} = {fr}" for en, fr in pairs]
    return "\n".join([*lines, f"{sentence} ="])


def qa_prompt(examples: Sequence[tuple[str, str]], question: str, context: str | None = None) -> str:
    """GPT-2's QA prompt: an optional passage, "Q: ... A: ..." example pairs, then "Q: question" and "A:"."""
    parts = [context.rstrip()] if context else []
    parts += [f"Q: {q}\nA: {a}" for q, a in examples]
    parts.append(f"Q: {question}\nA:")
    return "\n".join(parts)


def shot_name(k: int) -> str:
    return {0: "zero-shot", 1: "one-shot"}.get(k, "few-shot")


def few_shot_prompt(
    description: str, examples: Sequence[tuple[str, str]], query: str, k: int | None = None, sep: str = " =>"
) -> str:
    """GPT-3's in-context prompt: task description, k solved examples, then the query awaiting its answer.

    k = 0 is zero-shot, k = 1 one-shot, more is few-shot (None: all examples). With the default
    separator it reads "Translate English to French:\\nsea otter => loutre de mer\\ncheese =>".
    """
    k = len(examples) if k is None else k
    if not 0 <= k <= len(examples):
        raise ValueError(f"k must be between 0 and the number of examples ({len(examples)}), got {k}")
    lines = [description.rstrip()] if description else []
    lines += [f"{x}{sep} {y}" for x, y in examples[:k]]
    lines.append(f"{query}{sep}")
    return "\n".join(lines)


def first_sentences(text: str, n: int = 3) -> str:
    """The first ``n`` sentences (ended by . ! or ?), as GPT-2 kept from its sampled summaries."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    return " ".join(sentences[:n])


def complete(
    model: GPT,
    tokenizer,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int | None = None,
    stop: str | None = None,
) -> str:
    """The text the model writes after ``prompt`` (greedy when temperature=0), cut at ``stop`` if given."""
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError("the prompt encodes to no tokens")
    new = model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)[len(ids) :]
    text = tokenizer.decode(new)
    if stop is not None and stop in text:
        text = text[: text.index(stop)]
    return text


def summarize(
    model: GPT, tokenizer, article: str, max_new_tokens: int = 100, top_k: int = 2, seed: int | None = 0
) -> str:
    """GPT-2's recipe: "TL;DR:" after the article, 100 tokens of top-k sampling (k = 2), first 3 sentences."""
    text = complete(model, tokenizer, tldr_prompt(article), max_new_tokens, temperature=1.0, top_k=top_k, seed=seed)
    return first_sentences(text, 3)


def translate(model: GPT, tokenizer, pairs: Sequence[tuple[str, str]], sentence: str, max_new_tokens: int = 40) -> str:
    """Greedy continuation of the translation prompt, up to the end of the line."""
    return complete(model, tokenizer, translation_prompt(pairs, sentence), max_new_tokens, stop="\n").strip()


# ------------------------------------------------- answers from small models, honest numbers (notebook 10)
_SPEAKER_TAG = re.compile(r"^([A-Z][A-Z'\- ]*[A-Z])\s*:\s*")  # "ROMEO:", "FIRST CITIZEN:" (two letters or more)


def extract_answer(text: str) -> str:
    """The answer in a model's continuation of "... A:": the first line with words in it, without a speaker tag.

    A model trained on plays writes a newline after "A:" as if a speaker tag had ended, and often a
    speaker's name ("ROMEO:") before any words; cutting at the first newline would turn every answer into
    the empty string. So: skip blank lines and lines that are only a speaker tag, drop a leading tag or
    "A:" from the first line with words, and stop at a new "Q:" (the model asking the next question).
    An answer that never comes is the empty string.
    """
    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("Q:"):
            return ""
        line = re.sub(r"^A:\s*", "", line)
        line = _SPEAKER_TAG.sub("", line, count=1)
        line = line.split(" Q:")[0].strip()
        if line:
            return line
    return ""


def first_line(text: str) -> str:
    """The continuation up to its first newline: how GPT-2 reads an answer after "A:" (it ends with the line)."""
    return text.split("\n", 1)[0].strip()


def answer(
    model: GPT,
    tokenizer,
    examples: Sequence[tuple[str, str]],
    question: str,
    context: str | None = None,
    max_new_tokens: int = 20,
    extract: Callable[[str], str] = extract_answer,
) -> tuple[str, str]:
    """(answer, raw continuation): greedy decoding of the QA prompt, the answer read out of it by ``extract``.

    :func:`extract_answer` (the default) survives a model that starts its answer on a new line or with a
    speaker's name, as one trained on plays does; :func:`first_line` is the plain reading, the first line. The raw
    text is returned too, so a notebook can show what the model actually wrote.
    """
    raw = complete(model, tokenizer, qa_prompt(examples, question, context), max_new_tokens)
    return extract(raw), raw


def standard_error(accuracy: float, n: int) -> float:
    """The standard error of an accuracy measured on ``n`` independent items: sqrt(p (1 - p) / n)."""
    if n < 1:
        raise ValueError(f"need at least one item for a standard error, got n={n}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"an accuracy is between 0 and 1, got {accuracy}")
    return (accuracy * (1.0 - accuracy) / n) ** 0.5


def describe_accuracy(right: int, n: int, chance: float) -> str:
    """E.g. "62.0% ± 4.9% (n = 100; chance 25%): above chance"; "at chance" within 2 guessing standard errors."""
    if not 0 <= right <= n:
        raise ValueError(f"right ({right}) must be between 0 and n ({n})")
    acc = right / n
    se = standard_error(acc, n)
    chance_se = standard_error(chance, n)  # how far a model that guesses strays from chance on n items
    if abs(acc - chance) <= 2 * chance_se:
        verdict = "at chance: no better than guessing"
    else:
        verdict = "above chance" if acc > chance else "below chance"
    return f"{acc:.1%} ± {se:.1%} (n = {n}; chance {chance:.0%}): {verdict}"


def pmi_scores(
    model: GPT, tokenizer, context: str, choices: Sequence[str], neutral_context: str = ""
) -> tuple[list[float], list[float], list[float]]:
    """(sums, per-token means, PMI) of each choice after ``context``.

    A plain sum of log-probabilities pays for every token, so short or common continuations win whatever
    the context; the per-token mean removes the length; PMI, log P(choice | context) - log P(choice |
    neutral context), removes how likely the choice is anyway, leaving what the context adds. GPT-3 (its §2.4)
    divided by P(choice | "Answer: ") on a few tasks: ``neutral_context="Answer:"``; the default is no text at all.
    """
    if not choices:
        raise ValueError("need at least one choice")
    given = score_texts(model, tokenizer, [context] * len(choices), list(choices))
    prior = score_texts(model, tokenizer, [neutral_context] * len(choices), list(choices))
    sums = [s.logprob for s in given]
    means = [s.mean_logprob for s in given]
    pmi = [g.logprob - p.logprob for g, p in zip(given, prior, strict=True)]
    return sums, means, pmi


def classify_by_pmi(
    model: GPT,
    tokenizer,
    texts: Sequence[str],
    labels: Sequence[str],
    template: str = "{text}\nAnswer:",
    label_format: str = " {label}",
    neutral_text: str = "",
) -> tuple[list[int], torch.Tensor]:
    """:func:`classify_by_likelihood` with each label's score minus its score after a content-free text.

    A small model often prefers one label word after *any* text (it is shorter, or more frequent); plain
    likelihood then predicts that label for every example. Subtracting log P(label | template filled with
    ``neutral_text``) calibrates that preference away (the "content-free input" of Zhao et al., 2021).
    Returns the predicted indices and the (N, L) calibrated scores.
    """
    _, raw = classify_by_likelihood(model, tokenizer, texts, labels, template, label_format)
    _, prior = classify_by_likelihood(model, tokenizer, [neutral_text], labels, template, label_format)
    values = raw - prior
    return values.argmax(dim=1).tolist(), values


#: English -> French words for GPT-3's word-translation example (notebook 10): enough of them (111) that an
#: accuracy measured on them has a standard error of a few points, not the 12.5-point steps of 8 words.
ENGLISH_FRENCH_WORDS: tuple[tuple[str, str], ...] = tuple(
    tuple(pair.split("=")) for pair in (
        "cheese=fromage house=maison water=eau book=livre cat=chat bread=pain sun=soleil tree=arbre dog=chien "
        "apple=pomme moon=lune car=voiture king=roi queen=reine horse=cheval sea=mer sky=ciel night=nuit "
        "day=jour star=étoile flower=fleur bird=oiseau fish=poisson milk=lait wine=vin door=porte window=fenêtre "
        "chair=chaise bed=lit hand=main head=tête eye=œil heart=cœur mouth=bouche foot=pied "
        "mother=mère father=père brother=frère sister=sœur child=enfant friend=ami man=homme woman=femme "
        "city=ville street=rue school=école church=église garden=jardin river=rivière mountain=montagne "
        "forest=forêt field=champ snow=neige rain=pluie wind=vent fire=feu earth=terre stone=pierre gold=or "
        "silver=argent iron=fer red=rouge green=vert black=noir white=blanc blue=bleu yellow=jaune small=petit "
        "big=grand old=vieux new=nouveau good=bon bad=mauvais happy=heureux sad=triste cold=froid hot=chaud "
        "one=un two=deux three=trois four=quatre five=cinq seven=sept eight=huit nine=neuf ten=dix "
        "hundred=cent thousand=mille time=temps year=année week=semaine hour=heure morning=matin evening=soir "
        "summer=été winter=hiver spring=printemps autumn=automne love=amour war=guerre peace=paix death=mort "
        "life=vie word=mot name=nom song=chanson letter=lettre bridge=pont ship=navire "
        "island=île sword=épée"
    ).split()
)  # fmt: skip
