"""The interchange vocabulary: canonical values of the enumerated record and
teacher fields, with the variants that the seeds and real spreadsheets use.

Why one table: records describe what happened in the seeds' own terms, and
every policy matches on these canonical values.  A policy file that names a
value not listed here is a load error, so a typo in a policy can never make a
rule silently match nothing.
"""

from __future__ import annotations

from typing import Final

# field -> canonical value -> accepted variants (the canonical value itself is
# always accepted).  Variants are compared after stripping whitespace.
ENUMS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "stage": {
        "幼儿园": ("学前", "学前教育", "幼儿教育"),
        "小学": (),
        "初中": (),
        "高中": ("普通高中",),
        "中职": ("职业高中", "职高", "中等职业学校"),
        "特殊教育": ("特教", "特殊教育学校"),
        "其他": ("教研机构", "培训机构", "校外教育机构"),
    },
    "post": {
        "专任教师": ("教师",),
        "非专任教师": (),
        "班主任": (),
        "校长": (),
        "园长": (),
        "新任校长": (),
        "新任园长": (),
        "领导干部": (),
        "局直事业单位": ("局直单位", "局直事业单位人员"),
    },
    "level": {
        "国家级": ("国家", "国家级别", "CN期刊"),
        "省级": ("省", "自治区级", "省市级"),
        "市级": ("市", "地市级"),
        "区县级": ("县级", "区级", "旗县区级", "旗县级", "县区级", "区县"),
        "学区": ("学区级", "片区", "片区级", "学区（片区）"),
        "校级": ("学校", "校", "学校级"),
    },
    "form": {
        "集中": ("集中培训", "集中研修", "面授", "集中面授"),
        "网络": ("网络培训", "网络研修", "远程", "远程培训", "网络学习", "线上", "网络远程培训"),
        "校本": ("校本研修", "校本培训", "园本研修", "校（园）本研修", "校本研训"),
        "学区": ("学区研修", "片区研修", "学区培训"),
        "学历教育": ("学历", "学历提升", "研究生课程", "学位教育", "研究生课程学习"),
        "讲座": ("专题讲座", "报告会"),
        "教研活动": ("教研", "教科研活动"),
        "跟岗": ("跟岗培训", "跟岗脱产培训", "挂职锻炼"),
        "短期培训": ("短训",),
        "中长期培训": ("脱产培训", "长期培训"),
        "自主研习": ("自主选学", "自主选修", "读书自学", "自学"),
        "实践": ("实践活动", "开放型教学实践活动"),
        "工作室": ("工作站", "工作坊", "研究室", "工作室研修"),
        "其他": (),
    },
    "location": {
        "县域内": ("域内", "县内"),
        "县域外": ("域外", "县外"),
    },
    "result": {
        "优秀": (),
        "合格": ("通过", "结业"),
        "不合格": ("未通过", "未结业"),
        "未参加": ("缺训",),
    },
    "role": {
        "学员": ("参训教师", "学习者", "选课教师", "被培训教师"),
        "主讲教师": ("主讲", "授课教师", "培训主讲"),
        "指导教师": ("导师",),
        "辅导教师": (),
        "课程专家": (),
        "主持人": (),
        "核心成员": (),
        "外围成员": (),
        "课题组长": ("课题负责人",),
        "课题成员": ("成员",),
        "第一作者": (),
        "第二作者": (),
        "参编": ("参与编著",),
    },
    "achievement": {
        "论文": (),
        "课题": ("课题研究",),
        "获奖": ("获奖证书",),
        "公开课": ("观摩课", "示范课", "研究课", "评优课", "公开示范课"),
        "出版物": ("编著",),
        "专著": (),
        "教材": ("教材编写",),
        "专题讲座": (),
        "比赛一等奖": ("教学比赛一等奖", "技能比武一等奖"),
        "带教": ("导师带教", "师徒结对"),
        "课程开发": (),
        "骨干教师培训": (),
        "教研报告": ("教材辅导", "教材分析"),
    },
    "program": {
        "国培计划": ("国培",),
        "省培计划": ("省培",),
        "信息技术应用能力提升工程2.0": ("信息技术2.0", "信息技术应用能力提升工程", "北京市中小学信息技术应用能力提升工程2.0"),
        "新任教师培训": ("新教师培训", "上岗培训", "新入职教师培训", "试用期培训", "新入职教师上岗培训"),
        "新任校长园长任职资格培训": ("任职资格培训",),
        "班主任培训": ("班主任工作专题培训", "班主任集中培训"),
        "研究生课程进修班": (),
        "师范类学历教育": ("师范类学历", "师范类学历提升"),
        "教师发展学校": ("实践培训基地",),
        "开放型教学实践活动": (),
        "中国教育行政学院": (),
        "中国教师研修网": (),
        "委托高校培训": ("跨地区合作培训",),
        "送教下乡": ("送教下乡活动",),
    },
    "leave_kind": {
        "产假": (),
        "哺乳期": (),
        "病假": (),
    },
}

_LOOKUP: Final[dict[str, dict[str, str]]] = {
    field: {
        variant: canonical
        for canonical, variants in values.items()
        for variant in (canonical, *variants)
    }
    for field, values in ENUMS.items()
}


def canonical(field: str, value: str) -> str | None:
    """The canonical form of ``value`` for an enumerated ``field``, or None."""
    return _LOOKUP[field].get("".join(value.split()))


def is_enum(field: str) -> bool:
    return field in ENUMS


def allowed(field: str) -> list[str]:
    return list(ENUMS[field])
