"""Dataset validation: a streaming rule engine (`validator`), the bedrock-conversation-2024
format (`converse`, `converse_turns`, `converse_parts`), the rule table (`rules`) and the report
(`report`). Standard library only.
"""
