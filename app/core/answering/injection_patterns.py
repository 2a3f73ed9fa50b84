"""The phrase tables behind prompt-injection detection (:mod:`app.core.answering.injection`).

Regular expressions only: what makes a sentence read as an order to the
assistant (strong signals), imperative phrasings that count only in company
(weak signals), and the obfuscations that hide either. Kept apart from the
screening logic so the tables can grow without burying it.
"""

from __future__ import annotations

import re

_I = re.IGNORECASE
_GAP = r"[^.!?\n]{0,40}?"  # a short stretch within one sentence

# Strong signals: phrasings that ordinary documents essentially never use.
STRONG = [
    re.compile(rf"\b(ignore|disregard|forget|override|bypass|discard)\b{_GAP}"
               r"\b(instructions?|prompts?|rules|guidelines|directives?|context|sources?|"
               r"system messages?|documents?)\b", _I),
    re.compile(r"\b(previous|prior|above|earlier|original|initial)\s+(instructions?|prompts?|directives?)\b", _I),
    re.compile(r"\b(new|updated|real|true|secret|hidden|revised|additional)\s+(instructions?|directives?)\s*:", _I),
    re.compile(r"\b(system|initial|original|hidden)\s+prompt\b", _I),
    re.compile(r"\bfrom\s+now\s+on\b,?\s+(you|answer|reply|respond|always|never|end|start|only|say|act|speak)\b", _I),
    re.compile(r"\b(developer|god|jailbreak|dan|admin|administrator|debug)\s+mode\b|\bdo\s+anything\s+now\b|"
               r"\bjailbr(eak|oken)\b", _I),
    # Claimed authority and fake task boundaries: "ADMIN OVERRIDE", "Your next task:".
    re.compile(r"\b(admin|administrator|developer|root|sudo|debug|system|security)\s+override\b", _I),
    re.compile(r"\b(your|the)\s+(next|new|real|actual|true|only)\s+task\s*(is\s*)?:|\bnew\s+task\s*:", _I),
    # The canonical phrase in other languages (German, French, Spanish,
    # Italian, Portuguese, Dutch); English-only rules miss a translated attack.
    re.compile(r"\b(ignor|vergiss|vergessen|missacht|oubli|olvid|esquec|dimentic|negeer)\w*\b[^.!?\n]{0,30}?"
               r"\b(vorherig|bisherig|obig|früher|précédent|anterior|precedent|vorig|eerder|alle|toutes|todas|"
               r"tutte)\w*\s+(\w+\s+)?(anweisungen|instruktionen|befehle|consignes|instructions|instrucciones|"
               r"indicaciones|instruções|istruzioni|instructies|opdrachten)\b", _I),
    re.compile(r"\b(anweisungen|consignes|instructions|instrucciones|instruções|istruzioni|instructies)\s+"
               r"(vorherig|précédent|anterior|precedent|eerder)\w*", _I),
    # An image whose address carries a query string: the classic way to make
    # an assistant send data out when its answer is rendered.
    re.compile(r"!\[[^\]]*\]\(\s*https?://[^)\s]*\?[^)\s]*\)", _I),
    # Speaking to the assistant: "Hey Docent!", "If you are an AI…".
    re.compile(r"\b(hey|hi|hello|dear|attention|psst)\b[\s,!]*\b(docent|ai|chatbot|bot|gpt|chatgpt|llm)\b"
               r"|\b(hey|hi|hello|attention)\b[\s,]*\bassistant\s*[,!:.]", _I),
    re.compile(r"\bif\s+you\s+are\s+(an?\s+)?(ai|assistant|language\s+model|llm|chatbot|bot|gpt)"
               r"(\s+(model|assistant|system|agent))?\s*(reading|processing|summari[sz]ing|[,.:;!]|$)", _I),
    re.compile(r"\b(reply|respond|answer|output|print|write|return)\b[^.!?\n]{0,15}?\b(only|exactly|just)\s+"
               r"(with|the\s+word|the\s+phrase|the\s+text)\b", _I),
    re.compile(r"\bcite\s+(source\s+)?\[?\d+\]?\s+instead\b|\[\d+\]\s+is\s+(wrong|incorrect|false|outdated)\b|"
               r"\b(do\s+not|don't|never)\s+cite\b", _I),
    re.compile(r"\breveal\b[^.!?\n]{0,25}?\b(prompt|instructions?|rules)\b", _I),
    # Addressed to the assistant: "Assistant, …", "AI models: …", "Note to AI models".
    re.compile(r"^\W*(dear\s+)?(assistant|ai|chatbot|llm|language\s+model|gpt|chatgpt|bot)s?\s*[,:]", _I),
    re.compile(r"\b(note|message|instructions?|attention|reminder)\s+(to|for)\s+(the\s+|any\s+|all\s+)?"
               r"(ai|assistant|llm|language\s+model|chatbot|model|bot)s?\b", _I),
    re.compile(r"\b(ai|llm|gpt)\s+(assistants?|models?|systems?|agents?|readers?)\b[^.!?\n]{0,30}?"
               r"\b(must|should|shall|need\s+to|are\s+to|reading|when)\b", _I),
    # A fake turn: "SYSTEM: you are…", "assistant: ignore…".
    re.compile(r"^\W*(system|assistant|user|developer|human|ai)\s*:\s*(you|ignore|disregard|forget|from\s+now|new|"
               r"act|pretend|always|never|reply|respond|answer|say|output|print)\b", _I),
]

# Weak signals: imperative phrasings that a manual or a letter might use too.
# They count only next to a word about AI or prompts, beside a strong passage,
# or two of them together.
WEAK = [
    re.compile(r"\btell\s+the\s+(user|reader|human|customer)\b|\binform\s+the\s+user\b", _I),
    re.compile(r"\b(say|state|claim|answer|reply|respond)\s+(that|with)\b", _I),
    re.compile(r"\b(output|print|say|write|type|repeat)\s+(the\s+)?(word|phrase|text|string)\b", _I),
    re.compile(r"\band\s+nothing\s+else\b|\bno\s+matter\s+what\b", _I),
    re.compile(r"\b(end|start|begin)\s+(every|each|all|your)\s+(reply|replies|answers?|responses?|messages?)\b", _I),
    re.compile(r"\b(always|never)\s+(answers?|repl(y|ies)|responds?|says?|mentions?|cites?)\b", _I),
    re.compile(r"\bwhen\s+(summari[sz]ing|answering|asked|responding|processing)\b", _I),
    re.compile(r"\b(pretend|act\s+as|roleplay|role-play|impersonate)\b", _I),
    re.compile(r"\b(overrides?|supersedes?)\b", _I),
    re.compile(r"\bDAN\b"),
    re.compile(r"\byou\s+are\s+(now|no\s+longer)\b", _I),  # "You are now a member of the club."
    re.compile(r"\bin\s+your\s+(reply|replies|answer|response|output|summary)\b", _I),
    re.compile(r"\bbefore\s+(answering|replying|responding)\b", _I),
    re.compile(r"\b(every|each|any|all)\s+(question|request|query|prompt)s?\b", _I),
    re.compile(r"\bthe\s+correct\s+answer\s+(is|to)\b", _I),
    re.compile(r"\bend\s+of\s+(the\s+)?(document|context|sources?|input|file|data)\b", _I),
    re.compile(r"\bignore\s+(the|this|that|any|all|my|your)\s+(question|query|request|task)s?\b", _I),
    re.compile(r"\b(print|output|reply|respond|answer|write|return|say)\s+(only|just|exactly)\b", _I),
]
# Obfuscation that hides a phrase from the patterns: zero-width characters
# and s p a c e d - o u t letters.
ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad]")
SPACED = re.compile(r"\b(?:[A-Za-z][ .]){2,}[A-Za-z]\b")
# Who a weak imperative must be aimed at to count ("instructions" is not
# here: "the manual's instructions say that…" is ordinary prose).
AI_CONTEXT = re.compile(r"\b(ai|a\.i\.|assistants?|chatbot|llm|language\s+model|gpt|chatgpt|bot|docent)\b", _I)
