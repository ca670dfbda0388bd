"""China's provincial-level divisions by the two-letter code a join records (ISO 3166-2:CN, lower case), with the
names the 公示 shows in Chinese (zh-CN) and English: a person reads "浙江 / Zhejiang", never "zj"."""

from __future__ import annotations

from typing import Final

PROVINCES: Final[dict[str, tuple[str, str]]] = {
    "ah": ("安徽", "Anhui"), "bj": ("北京", "Beijing"), "cq": ("重庆", "Chongqing"), "fj": ("福建", "Fujian"),
    "gd": ("广东", "Guangdong"), "gs": ("甘肃", "Gansu"), "gx": ("广西", "Guangxi"), "gz": ("贵州", "Guizhou"),
    "ha": ("河南", "Henan"), "hb": ("湖北", "Hubei"), "he": ("河北", "Hebei"), "hi": ("海南", "Hainan"),
    "hk": ("香港", "Hong Kong"), "hl": ("黑龙江", "Heilongjiang"), "hn": ("湖南", "Hunan"), "jl": ("吉林", "Jilin"),
    "js": ("江苏", "Jiangsu"), "jx": ("江西", "Jiangxi"), "ln": ("辽宁", "Liaoning"), "mo": ("澳门", "Macao"),
    "nm": ("内蒙古", "Inner Mongolia"), "nx": ("宁夏", "Ningxia"), "qh": ("青海", "Qinghai"),
    "sc": ("四川", "Sichuan"), "sd": ("山东", "Shandong"), "sh": ("上海", "Shanghai"), "sn": ("陕西", "Shaanxi"),
    "sx": ("山西", "Shanxi"), "tj": ("天津", "Tianjin"), "tw": ("台湾", "Taiwan"), "xj": ("新疆", "Xinjiang"),
    "xz": ("西藏", "Tibet"), "yn": ("云南", "Yunnan"), "zj": ("浙江", "Zhejiang"),
}
"""Code → (zh-CN name, English name)."""


def province_names(code: str) -> dict[str, str]:
    """The names a card shows for a province code; an unknown code (a join before the rule) is shown as it is."""
    zh, en = PROVINCES.get(code, (code, code))
    return {"zh-CN": zh, "en": en}
