"use strict";
/* Chinese first, English on request; the choice is kept in localStorage. */
const I18N = (function () {
  const T = {
    zh: {
      title: "宿舍楼运行驾驶舱", user: "用户名", password: "密码", login: "登录", logout: "退出",
      bad_login: "用户名或密码错误", too_many: "登录失败次数过多，请稍后再试",
      network_error: "网络错误", lang: "English",
      queue: "预警处置队列", kpis: "运行指标", devices: "设备状态（按楼层）",
      chart_passages: "近24小时通行人次", chart_power: "近24小时楼宇用电 (kW)", chart_alerts: "近24小时预警数",
      ack: "确认", resolve: "处置", assign: "指派", comment: "备注", snapshot: "抓拍",
      resolve_note: "处置说明", submit: "提交", cancel: "取消", close: "关闭",
      open: "待确认", acknowledged: "处置中", resolved: "已处置",
      info: "提示", warning: "警告", critical: "紧急",
      age: "已持续", due_ack: "确认时限", due_resolve: "处置时限", overdue: "已超时",
      no_alerts: "当前没有待处置的预警", floor: "楼层", floor_n: "{n}层", building: "楼栋",
      k_residents_in: "在寝人数", k_in_share: "在寝率", k_return_rate: "归寝率", k_late: "今日晚归",
      k_alerts_today: "今日预警", k_open: "未关闭预警", k_overdue: "超时预警",
      k_median_ack: "确认中位时长", k_in_time: "按时处置率", k_devices_online: "设备在线",
      k_terminals: "自助终端可用", k_txns: "今日终端业务", k_power_now: "当前用电", k_energy: "今日用电",
      pending: "待接入", live: "实时", offline: "连接中断，正在重连…", you: "当前用户",
      role_viewer: "只读", role_operator: "值班员", role_counsellor: "辅导员", role_admin: "管理员",
      kind_gate: "闸机", kind_terminal: "自助终端", kind_meter: "电表", kind_safety_io: "消防/安防模块",
      kind_camera: "摄像机", online: "在线", offline_dev: "离线", unknown: "未知",
      action_failed: "操作失败", seconds: "秒", minutes: "分", hours: "小时", resident: "住宿生",
      short_gate: "闸", short_terminal: "终端", short_meter: "电表", short_safety_io: "消防", short_camera: "摄像",
      users: "用户管理", role: "角色", status: "状态", enabled: "已启用", disabled: "已停用", me_tag: "本人",
      enable: "启用", disable: "停用", reset_password: "重置密码", confirm: "确定",
      change_password: "修改密码", current_password: "当前密码", new_password: "新密码",
      repeat_password: "再次输入新密码", pw_hint: "新密码至少 {n} 个字符",
      pw_need_current: "请输入当前密码", pw_short: "新密码至少需要 {n} 个字符",
      pw_mismatch: "两次输入的新密码不一致", pw_same: "新密码不能与当前密码相同",
      pw_wrong: "当前密码错误", pw_rejected: "新密码不符合要求", pw_limited: "尝试次数过多，请 {s} 秒后再试",
      pw_changed: "密码已修改；您在其他设备上的登录已退出",
      confirm_disable: "停用用户 {name}？其登录会话将立即结束，且无法再登录，直到重新启用。",
      confirm_disable_self: "停用您自己的账号？您将立即退出，且无法再登录。",
      confirm_reset: "为用户 {name} 重置密码？其登录会话将立即结束，原密码作废。",
      reset_title: "{name} 的新密码", reset_once: "此密码仅显示这一次。请当面交给本人，并请其登录后立即修改密码。",
      reset_done: "已交付，关闭", last_admin: "不能停用最后一个启用的管理员：请先启用或添加另一位管理员",
      no_user: "该用户不存在", user_enabled: "已启用 {name}", user_disabled: "已停用 {name}",
    },
    en: {
      title: "Dormitory operations cockpit", user: "User name", password: "Password", login: "Log in",
      logout: "Log out", bad_login: "Wrong user name or password",
      too_many: "Too many failed logins, try again later", network_error: "Network error", lang: "中文",
      queue: "Alert queue", kpis: "Key figures", devices: "Devices by floor",
      chart_passages: "Passages per hour, last 24 h", chart_power: "Building power, last 24 h (kW)",
      chart_alerts: "Alerts per hour, last 24 h",
      ack: "Acknowledge", resolve: "Resolve", assign: "Assign", comment: "Comment", snapshot: "Snapshot",
      resolve_note: "Resolution note", submit: "Submit", cancel: "Cancel", close: "Close",
      open: "Open", acknowledged: "Acknowledged", resolved: "Resolved",
      info: "Info", warning: "Warning", critical: "Critical",
      age: "Age", due_ack: "Ack due", due_resolve: "Resolve due", overdue: "Overdue",
      no_alerts: "No alerts to handle", floor: "Floor", floor_n: "Floor {n}", building: "Building",
      k_residents_in: "Residents in", k_in_share: "In-residence rate", k_return_rate: "Return rate",
      k_late: "Late returns today", k_alerts_today: "Alerts today", k_open: "Open alerts",
      k_overdue: "Overdue alerts", k_median_ack: "Median time to ack", k_in_time: "Resolved in time",
      k_devices_online: "Devices online", k_terminals: "Terminals available", k_txns: "Terminal use today",
      k_power_now: "Power now", k_energy: "Energy today",
      pending: "pending", live: "Live", offline: "Disconnected, reconnecting…", you: "Signed in",
      role_viewer: "viewer", role_operator: "operator", role_counsellor: "counsellor", role_admin: "admin",
      kind_gate: "Gates", kind_terminal: "Terminals", kind_meter: "Meters", kind_safety_io: "Safety I/O",
      kind_camera: "Cameras", online: "online", offline_dev: "offline", unknown: "unknown",
      action_failed: "Action failed", seconds: "s", minutes: "min", hours: "h", resident: "Resident",
      short_gate: "G", short_terminal: "T", short_meter: "M", short_safety_io: "S", short_camera: "C",
      users: "Users", role: "Role", status: "Status", enabled: "enabled", disabled: "disabled", me_tag: "you",
      enable: "Enable", disable: "Disable", reset_password: "Reset password", confirm: "OK",
      change_password: "Change password", current_password: "Current password", new_password: "New password",
      repeat_password: "Repeat the new password", pw_hint: "At least {n} characters",
      pw_need_current: "Enter your current password", pw_short: "The new password needs at least {n} characters",
      pw_mismatch: "The two new passwords differ", pw_same: "The new password is the same as the current one",
      pw_wrong: "The current password is wrong", pw_rejected: "The new password was not accepted",
      pw_limited: "Too many tries, try again in {s} s",
      pw_changed: "Password changed; your sessions on other devices have ended",
      confirm_disable: "Disable user {name}? Their sessions end at once and they cannot log in until enabled again.",
      confirm_disable_self: "Disable your own account? You will be logged out at once and cannot log in again.",
      confirm_reset: "Reset the password of {name}? Their sessions end at once and the old password stops working.",
      reset_title: "New password for {name}",
      reset_once: "This password is shown only this once. Hand it to the person directly and ask them to change it after logging in.",
      reset_done: "Handed over, close", last_admin: "The last enabled admin cannot be disabled: enable or add another admin first",
      no_user: "No such user", user_enabled: "{name} enabled", user_disabled: "{name} disabled",
    },
  };
  const RULES = {
    "gate.tailgate": ["尾随", "Tailgating"],
    "gate.forced": ["闯闸/翻越/反向", "Forced / climb / reverse"],
    "gate.denied_burst": ["异常刷卡", "Denied-card burst"],
    "gate.blacklist": ["挂失卡使用", "Blacklisted card"],
    "gate.outsider_night": ["非本楼人员夜间", "Outsider at night"],
    "gate.camera_mismatch": ["尾随(视频核对)", "Tailgating (camera check)"],
    "resident.late_return": ["晚归", "Late return"],
    "resident.not_returned": ["未归", "Not returned"],
    "resident.no_exit": ["长时间未出", "No exit for 48 h"],
    "door.held_open": ["防火门常开", "Fire door held open"],
    "safety.smoke": ["烟感报警", "Smoke alarm"],
    "safety.water_leak": ["水浸", "Water leak"],
    "safety.temperature": ["温度异常", "Temperature"],
    "power.illegal_appliance": ["违章电器", "Illegal appliance"],
    "power.overload": ["超功率", "Power overload"],
    "crowd.density": ["人员聚集", "Crowding"],
    "camera.tamper": ["视频遮挡/移位/失焦", "Camera tamper"],
    "device.offline": ["设备离线", "Device offline"],
    "terminal.fault": ["自助终端故障", "Terminal fault"],
    "terminal.failure_rate": ["自助终端失败率", "Terminal failure rate"],
  };
  let lang = localStorage.getItem("ce.lang") || "zh";
  function t(key, vars) {
    let s = (T[lang] && T[lang][key]) || T.zh[key] || key;
    if (vars) for (const k of Object.keys(vars)) s = s.replace("{" + k + "}", vars[k]);
    return s;
  }
  function rule(id) {
    const r = RULES[id];
    return r ? r[lang === "zh" ? 0 : 1] : id;
  }
  function apply(root) {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    for (const el of (root || document).querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    const b = document.getElementById("lang");
    if (b) b.textContent = t("lang");
  }
  function toggle() {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("ce.lang", lang);
  }
  return { t, rule, apply, toggle, get lang() { return lang; } };
})();
