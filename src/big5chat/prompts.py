"""The study's prompt texts, in one place (docs/paper.md §2.2, 2.6, 2.8, 2.10)."""

from __future__ import annotations

from big5chat.traits import TITLE, normalize_level, normalize_trait


def expert_instruction(trait: str, level: str) -> str:
    """The expert generators' instruction (Alpaca ``instruction``; the post's first 5 words are the ``input``)."""
    return f"Help me complete the sentence with certain Big Five Personality: {TITLE[normalize_trait(trait)]} - {normalize_level(level)}"


def alpaca_query(instruction: str, input_text: str) -> str:
    """LLaMA-Factory's Alpaca user turn: instruction and input joined by a newline."""
    return f"{instruction}\n{input_text}" if input_text else instruction


def trait_system_prompt(trait: str, level: str) -> str:
    """SFT/DPO instruction (also the prompt of trained models at questionnaire time)."""
    return f"You are a helpful assistant with the following Big Five personality traits: {TITLE[normalize_trait(trait)]} - {normalize_level(level)}"


def prompt_inst(trait: str, level: str) -> str:
    """The Prompt-Inst baseline (questionnaires; the system instruction in the reasoning benchmarks)."""
    return f"You are a person with {normalize_level(level)} {normalize_trait(trait)}."
