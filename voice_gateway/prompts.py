"""What the gateway itself says on the phone (everything else comes from the bot's domain).
Fixed texts: the TTS cache renders them at start-up (voice_gateway/tts/cache.py)."""

NOT_HEARD = "抱歉，我没有听清楚，请您再说一遍。"
# Spoken after the phone greeting (utter_greet's phone variant): two sentences in all.
MENU_PROMPT = "请直接说出您的问题，或者按1查订单，按2查保修，按3预约维修，按4查案例进度，按0转人工。"
ALL_LINES_BUSY = "您好，现在所有线路都在忙。正在为您转接人工顾问，请稍候。"
TRANSFER_FAILED = "抱歉，暂时无法为您转接。请稍后再拨，或通过苹果官网联系顾问。"
# A call still live when its gateway shuts down (after DRAIN_TIMEOUT_S): calling again reaches
# another gateway.
SHUTTING_DOWN = "抱歉，本线路需要维护，请您稍后重新拨打，再见。"
# A caller who says nothing after the bot has spoken: two reprompts, then a goodbye and the bot
# hangs up (timings: README, "Turn-taking").
REPROMPT_FIRST = "您好，还在听吗？请说出您的问题，或者按0转人工。"
REPROMPT_AGAIN = "请问您还在线吗？请说出问题，或按0转人工。"
NO_INPUT_GOODBYE = "很抱歉没有听到您的声音，感谢您的来电，再见。"
# A number the recogniser was unsure of, said back before the bot looks it up.
HEARD_NUMBER = "我听到的是{code}。"
TIME_UP = "本次通话已达时长上限，感谢您的来电，再见。"  # said when a call reaches MAX_CALL_S


REPROMPTS = (REPROMPT_FIRST, REPROMPT_AGAIN)


def all_prompts() -> list:
    """Every fixed text above (not templates): the TTS cache renders each at start-up."""
    return [value for name, value in globals().items()
            if name.isupper() and isinstance(value, str) and "{" not in value]
