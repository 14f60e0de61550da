/* City intake web chat. ES5 only (old Android browsers), no dependencies. */
(function () {
'use strict';
var W = window, D = document, API = '/chat/api/', MAX = 2000, WARN = 1800;

var K = 'title intro ph send sending fail bad conn me city newer hi'.split(' '), L = {
en: ['City help 120',
'Ask a question or report a problem. Do not share passwords or card numbers.',
'Type your question',
'Send',
'Sending...',
'Not sent - tap to retry',
'Not sent - tap to edit',
'Connection lost - reconnecting...',
'You',
'City',
'New messages',
'Hello! This is the city help desk. You can ask in Korean, English, Chinese, Japanese, Vietnamese or Mongolian.'],
ko: ['120 민원 상담',
'궁금한 점을 묻거나 불편 사항을 신고하세요. 비밀번호나 카드 번호는 보내지 마세요.',
'질문을 입력하세요',
'보내기',
'보내는 중...',
'전송 실패 - 눌러서 다시 보내기',
'전송 실패 - 눌러서 고치기',
'연결이 끊겼습니다 - 다시 연결하는 중...',
'나',
'시청',
'새 메시지',
'안녕하세요! 시청 민원 상담 창구입니다. 한국어, 영어, 중국어, 일본어, 베트남어, 몽골어로 물어보실 수 있습니다.'],
zh: ['120 市民咨询',
'请提问或反映问题。请勿发送密码或银行卡号。',
'请输入您的问题',
'发送',
'发送中...',
'未发送 - 点击重试',
'未发送 - 点击修改',
'连接中断 - 正在重新连接...',
'我',
'市政府',
'新消息',
'您好！这里是市政府咨询窗口。您可以用韩语、英语、中文、日语、越南语或蒙古语提问。'],
ja: ['120 市民相談',
'質問や困りごとをどうぞ。パスワードやカード番号は送らないでください。',
'質問を入力してください',
'送信',
'送信中...',
'未送信 - タップして再送',
'未送信 - タップして修正',
'接続が切れました - 再接続中...',
'あなた',
'市役所',
'新着メッセージ',
'こんにちは。市の相談窓口です。韓国語、英語、中国語、日本語、ベトナム語、モンゴル語で質問できます。'],
vi: ['Hỗ trợ thành phố 120',
'Hãy đặt câu hỏi hoặc báo cáo sự cố. Không chia sẻ mật khẩu hay số thẻ.',
'Nhập câu hỏi của bạn',
'Gửi',
'Đang gửi...',
'Chưa gửi được - chạm để thử lại',
'Chưa gửi được - chạm để sửa',
'Mất kết nối - đang kết nối lại...',
'Bạn',
'Thành phố',
'Tin nhắn mới',
'Xin chào! Đây là bộ phận hỗ trợ của thành phố. Bạn có thể hỏi bằng tiếng Hàn, Anh, Trung, Nhật, Việt hoặc Mông Cổ.'],
mn: ['Хотын лавлах 120',
'Асуултаа асууж эсвэл асуудлаа мэдээлнэ үү. Нууц үг, картын дугаараа бүү бичээрэй.',
'Асуултаа бичнэ үү',
'Илгээх',
'Илгээж байна...',
'Илгээгдсэнгүй - дахин оролдох бол дарна уу',
'Илгээгдсэнгүй - засах бол дарна уу',
'Холболт тасарлаа - дахин холбогдож байна...',
'Та',
'Хот',
'Шинэ мессеж',
'Сайн байна уу! Энэ бол хотын лавлах. Солонгос, англи, хятад, япон, вьетнам, монгол хэлээр асууж болно.']
};

function pickLang() {
	var n = W.navigator || {}, list = [].concat(n.languages || [], n.language || n.userLanguage || []), i, c;
	for (i = 0; i < list.length; i++) {
		c = String(list[i]).toLowerCase().slice(0, 2);
		if (L.hasOwnProperty(c)) return c;
	}
	return 'en';
}
var LANG = pickLang(), T = {}, k;
for (k = 0; k < K.length; k++) T[K[k]] = L[LANG][k];

function $(id) { return D.getElementById(id); }
function now() { return new Date().getTime(); }
function mk(tag, cls, text) {
	var e = D.createElement(tag);
	if (cls) e.className = cls;
	if (text != null) e.appendChild(D.createTextNode(text));
	return e;
}
function show(e, on) { if (on) e.removeAttribute('hidden'); else e.setAttribute('hidden', ''); }
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

/* localStorage when usable, else memory only */
var store = null;
try {
	store = W.localStorage;
	store.setItem('intake.t', '1');
	store.removeItem('intake.t');
} catch (e) { store = null; }
function sget(k) { try { return store ? store.getItem(k) : null; } catch (e) { return null; } }
function sset(k, v) {
	try { if (store) { if (v === null) store.removeItem(k); else store.setItem(k, v); } } catch (e) {}
}

var ABC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
function newId() {
	var n = 22, out = '', b = null, c = W.crypto, i;
	if (c && c.getRandomValues && W.Uint8Array) {
		try { b = new W.Uint8Array(n); c.getRandomValues(b); } catch (e) { b = null; }
	}
	for (i = 0; i < n; i++) out += ABC.charAt(b ? b[i] & 63 : Math.floor(Math.random() * 64));
	return out;
}

/* status 0: network error or timeout */
function req(method, url, body, ms, cb) {
	var x = new XMLHttpRequest(), done = false, timer;
	function fin() {
		var st = 0, data = null;
		if (done) return;
		done = true;
		clearTimeout(timer);
		try { st = x.status; } catch (e) { st = 0; }
		try { data = JSON.parse(x.responseText); } catch (e2) { data = null; }
		cb(st, data, x);
	}
	x.open(method, url, true);
	if (body !== null) x.setRequestHeader('Content-Type', 'application/json'); else x.setRequestHeader('Cache-Control', 'no-cache');
	x.onreadystatechange = function () { if (x.readyState === 4) fin(); };
	timer = setTimeout(function () { try { x.abort(); } catch (e) {} fin(); }, ms);
	try { x.send(body === null ? null : JSON.stringify(body)); } catch (e) { setTimeout(fin, 0); }
	return { abort: function () { done = true; clearTimeout(timer); try { x.abort(); } catch (e) {} } };
}
function retryAfter(x) {
	var h = null, s;
	try { h = x.getResponseHeader('Retry-After'); } catch (e) {}
	s = parseInt(h, 10);
	return Math.max(1, Math.min(isNaN(s) ? 5 : s, 300)) * 1000;
}

var log = $('log'), form = $('composer'), ta = $('text'), sendBtn = $('send'), count = $('count'),
	conn = $('conn'), newer = $('newer');

function pad(n) { return (n < 10 ? '0' : '') + n; }
function parseAt(s) {
	var m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?\s*(Z|[+\-]\d\d:?\d\d)?$/i.exec(String(s || '')),
		ms, o;
	if (!m) return null;
	if (!m[7]) return new Date(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
	ms = Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
	if (m[7].toUpperCase() !== 'Z') {
		o = m[7].replace(':', '');
		ms -= (o.charAt(0) === '-' ? -1 : 1) * (+o.substr(1, 2) * 60 + +o.substr(3, 2)) * 60000;
	}
	return new Date(ms);
}
function setTime(e, at, raw) {
	var t = e._time, d = at || null, today = new Date();
	clear(t);
	if (!d || isNaN(d.getTime())) return;
	t.setAttribute('datetime', raw || d.toISOString());
	t.appendChild(D.createTextNode((d.toDateString() === today.toDateString() ? '' : (d.getMonth() + 1) + '/' + d.getDate() + ' ') +
		pad(d.getHours()) + ':' + pad(d.getMinutes())));
}

var URL_RE = /https?:\/\/[A-Za-z0-9\-._~:\/?#\[\]@!$&'()*+,;=%]+/g;
function cnt(s, c) { return s.split(c).length - 1; }
function fillText(node, text) {
	var last = 0, m, url, ch, a;
	clear(node);
	URL_RE.lastIndex = 0;
	while ((m = URL_RE.exec(text)) !== null) {
		url = m[0];
		while (url.length) {
			ch = url.charAt(url.length - 1);
			if ('.,;:!?\'"'.indexOf(ch) < 0 && !(ch === ')' && cnt(url, '(') < cnt(url, ')'))) break;
			url = url.slice(0, -1);
		}
		if (!/^https?:\/\/[A-Za-z0-9]/.test(url)) continue;
		if (m.index > last) node.appendChild(D.createTextNode(text.slice(last, m.index)));
		a = mk('a', null, url);
		a.href = url;
		a.target = '_blank';
		a.rel = 'noopener noreferrer';
		node.appendChild(a);
		last = m.index + url.length;
		URL_RE.lastIndex = last;
	}
	if (last < text.length) node.appendChild(D.createTextNode(text.slice(last)));
}

function buildMsg(city, text, at, raw, buttons) {
	var e = mk('div', 'msg ' + (city ? 'city' : 'me')), b = mk('div', 'bubble'), meta = mk('div', 'meta'), i, g, btn;
	b.appendChild(mk('span', 'sr', (city ? T.city : T.me) + ': '));
	e._tx = mk('span', 'tx');
	fillText(e._tx, text);
	b.appendChild(e._tx);
	e.appendChild(b);
	e._time = mk('time');
	e._st = mk('span', 'st');
	meta.appendChild(e._time);
	meta.appendChild(e._st);
	e.appendChild(meta);
	setTime(e, at, raw);
	if (city && buttons && buttons.length) {
		g = mk('div', 'btns');
		g.setAttribute('role', 'group');
		for (i = 0; i < buttons.length; i++) {
			if (!buttons[i]) continue;
			btn = mk('button', null, String(buttons[i].label !== undefined ? buttons[i].label : buttons[i].value));
			btn.type = 'button';
			btn._value = String(buttons[i].value !== undefined ? buttons[i].value : buttons[i].label);
			g.appendChild(btn);
		}
		e.appendChild(g);
	}
	return e;
}

/* follow the newest message unless the reader scrolled up */
var follow = true;
function docH() { return Math.max(D.documentElement.scrollHeight, D.body.scrollHeight); }
function atBottom() {
	var top = W.pageYOffset || D.documentElement.scrollTop || D.body.scrollTop || 0;
	return top + W.innerHeight >= docH() - 80;
}
function toBottom() { W.scrollTo(0, docH()); follow = true; show(newer); }
function newContent(mine) { if (mine || follow) toBottom(); else show(newer, true); }

var session = sget('intake.session'), waiters = null;
if (!session || !/^[A-Za-z0-9_\-]{20,200}$/.test(session)) session = null;
function withSession(cb) {
	if (session) { cb(true); return; }
	if (waiters) { waiters.push(cb); return; }
	waiters = [cb];
	req('POST', API + 'session', {}, 20000, function (st, data) {
		var w = waiters, ok = st === 200 && data && typeof data.session === 'string' && data.session.length > 0, i;
		waiters = null;
		if (ok) setSession(data.session);
		for (i = 0; i < w.length; i++) w[i](!!ok);
	});
}
function setSession(s) {
	session = s;
	sset('intake.session', s);
	version = '';
	rendered = {};
	ready = true;
	startPoll();
}
function dropSession(s) {
	if (session !== s) return;
	session = null;
	sset('intake.session', null);
	stopPoll();
}

/* outbox: unconfirmed citizen messages, sent one at a time in order */
var box = [], busy = false, cur = null, sendTimer = null, ready = !session;

function save() {
	var out = [], i;
	for (i = 0; i < box.length; i++) {
		if (box[i].st !== 'ok') { out.push({ i: box[i].id, x: box[i].text, t: box[i].t, b: box[i].st === 'bad' ? 1 : 0 }); }
	}
	sset('intake.outbox', out.length ? JSON.stringify(out) : null);
}
function paint(it) {
	var e = it.el, st = it.matched ? 'ok' : it.st, f = st === 'fail' || st === 'bad', b;
	e.className = 'msg me' + (f ? ' fail' : '');
	clear(e._st);
	if (f) {
		b = e._st.appendChild(mk('button', 'retry', T[st]));
		b.type = 'button';
	} else if (st !== 'ok') e._st.appendChild(D.createTextNode(T.sending));
	if (follow) toBottom();
}
function place(it) {
	if (it.el) it.el._item = null;
	it.el = buildMsg(false, it.text, new Date(it.t));
	it.el._item = it;
	it.matched = false;
	log.appendChild(it.el);
	paint(it);
}
function addItem(text, id, t, bad) {
	var it = { id: id || newId(), text: text, t: t || now(), st: bad ? 'bad' : 'wait', matched: false,
		tried: !!id, n: 0, until: 0, okSeq: 0, el: null };
	place(it);
	box.push(it);
	save();
	return it;
}
function prune() {
	var i;
	for (i = box.length - 1; i >= 0; i--) { if (box[i].st === 'ok' && box[i].matched) box.splice(i, 1); }
}

function kick() {
	var i, it = null;
	if (busy || !ready) return;
	for (i = 0; i < box.length; i++) { if (box[i].st === 'wait') { it = box[i]; break; } }
	if (!it) return;
	busy = true;
	cur = it;
	it.n = 0;
	it.until = now() + 60000;
	attempt(it);
}
function attempt(it) {
	it.st = 'send';
	paint(it);
	withSession(function (ok) {
		var s = session;
		if (!ok) { later(it, 0); return; }
		it.tried = true;
		req('POST', API + 'messages', { session: s, id: it.id, text: it.text }, 30000, function (st, data, x) {
			var w;
			if (st >= 200 && st < 300) {
				it.st = 'ok';
				it.okSeq = pollSeq;
				next(it);
				if (session && !pollX && !pollTimer) startPoll();
			} else if (st === 400 || st === 413) {
				it.st = 'bad';
				next(it);
			} else if (st === 403) {
				dropSession(s); /* unknown session: resend at once with a new one */
				later(it, it.n ? 0 : 1);
			} else if (st === 429) {
				w = retryAfter(x);
				it.until = Math.max(it.until, now() + w + 30000);
				later(it, w);
			} else {
				later(it, 0);
			}
		});
	});
}
function later(it, delay) {
	var d = delay || Math.min(16000, 1000 * Math.pow(2, it.n));
	it.n++;
	if (!delay && now() + d > it.until) {
		giveUp(it);
		return;
	}
	sendTimer = setTimeout(function () { sendTimer = null; attempt(it); }, d);
}
function giveUp(it) {
	var i;
	for (i = 0; i < box.length; i++) {
		if (box[i] === it || box[i].st === 'wait') {
			box[i].st = 'fail';
			if (box[i].matched) place(box[i]);
			paint(box[i]);
		}
	}
	next(null);
}
function next(it) {
	busy = false;
	cur = null;
	if (it) paint(it);
	prune();
	save();
	kick();
}
function retryFailed() {
	var i;
	for (i = 0; i < box.length; i++) { if (box[i].st === 'fail') { box[i].st = 'wait'; paint(box[i]); } }
	save();
	kick();
}
function editBack(it) {
	var i = box.indexOf(it);
	if (i >= 0) box.splice(i, 1);
	if (it.el.parentNode) it.el.parentNode.removeChild(it.el);
	ta.value = it.text + (ta.value ? '\n' + ta.value : '');
	save();
	update();
	ta.focus();
}
function sendText(text) {
	text = String(text).replace(/\r\n?/g, '\n').replace(/^\s+|\s+$/g, '');
	if (!text || text.length > MAX) return false;
	addItem(text);
	newContent(true);
	kick();
	return true;
}

var version = '', rendered = {}, pollX = null, pollTimer = null, pollSeq = 0, pollFails = 0;
function showConn(on) {
	var t = on ? T.conn : '';
	if (conn.textContent !== t) { conn.textContent = t; fit(); }
}
function stopPoll() {
	pollSeq++;
	if (pollX) { pollX.abort(); pollX = null; }
	if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
	showConn(false);
}
function startPoll() {
	stopPoll();
	pollFails = 0;
	if (session) poll();
}
function pollLater(ms) {
	var seq = pollSeq;
	pollTimer = setTimeout(function () { pollTimer = null; if (seq === pollSeq) poll(); }, ms);
}
function poll() {
	var seq = ++pollSeq, sent = version, s = session, t0 = now();
	pollX = req('GET', API + 'messages?session=' + encodeURIComponent(s) + '&version=' + encodeURIComponent(sent), null, 45000, function (st, data, x) {
		if (seq !== pollSeq) return;
		pollX = null;
		if (st === 200 && data && Array.isArray(data.messages)) {
			pollFails = 0;
			showConn(false);
			version = data.version === undefined || data.version === null ? '' : String(data.version);
			apply(data.messages, seq);
			if (!ready) { ready = true; kick(); }
			pollLater(version === sent && now() - t0 < 1000 ? 1000 : 0);
		} else if (st === 204 || st === 304) {
			pollFails = 0;
			showConn(false);
			pollLater(now() - t0 < 1000 ? 1000 : 0);
		} else if (st === 403 || (st === 400 && !sent)) {
			dropSession(s);
			kick();
		} else {
			if (st === 400) version = '';
			pollFails++;
			showConn(true);
			pollLater(Math.max(Math.min(15000, 1000 * Math.pow(2, pollFails - 1)), st === 429 ? retryAfter(x) : 0));
		}
	});
}

function norm(s) {
	s = String(s);
	if (s.normalize) { try { s = s.normalize('NFC'); } catch (e) {} }
	return s.replace(/\s+/g, ' ').replace(/^ | $/g, '');
}
/* The server list is authoritative: a local bubble adopts the server's copy (same id, or same text) */
function match(m, text) {
	var i, it, n = norm(text);
	for (i = 0; i < box.length; i++) {
		it = box[i];
		if (!it.matched && (it.id === String(m.id) || it.id === m.client_id)) return it;
	}
	for (i = 0; i < box.length; i++) {
		it = box[i];
		if (!it.matched && it.tried && norm(it.text) === n) return it;
	}
	return null;
}
function firstPending(except) {
	var c;
	for (c = log.firstChild; c; c = c.nextSibling) {
		if (c._item && !c._item.matched && c !== except) return c;
	}
	return null;
}
function apply(list, seq) {
	var added = false, i, m, it, e, text, city, key, d;
	for (i = 0; i < list.length; i++) {
		m = list[i];
		if (!m || m.id === undefined || m.id === null) continue;
		key = '#' + m.id;
		if (rendered.hasOwnProperty(key)) continue;
		rendered[key] = 1;
		text = m.text === undefined || m.text === null ? '' : String(m.text);
		city = m.from === 'city';
		it = city ? null : match(m, text);
		d = parseAt(m.at);
		if (it) {
			it.matched = true;
			if (it.st === 'fail') it.st = 'ok';
			e = it.el;
			if (e._tx.textContent !== text) fillText(e._tx, text);
			setTime(e, d || new Date(it.t), d ? m.at : null);
			paint(it);
			log.insertBefore(e, firstPending(e));
		} else {
			log.insertBefore(buildMsg(city, text, d, d ? m.at : null, m.buttons), firstPending(null));
			added = true;
		}
	}
	/* accepted, yet unmatched in a later list: the server's copy is shown already */
	for (i = box.length - 1; i >= 0; i--) {
		it = box[i];
		if (it.st === 'ok' && !it.matched && seq > it.okSeq) {
			box.splice(i, 1);
			if (it.el.parentNode) it.el.parentNode.removeChild(it.el);
		}
	}
	prune();
	save();
	if (added) newContent(false);
}

/* resume after the tab was hidden, frozen or offline */
function wake() {
	if (session) startPoll();
	if (sendTimer && cur) { clearTimeout(sendTimer); sendTimer = null; cur.until = Math.max(cur.until, now() + 15000); attempt(cur); }
}
function onVis() { if (!(D.hidden || D.webkitHidden)) wake(); }
D.addEventListener('visibilitychange', onVis);
D.addEventListener('webkitvisibilitychange', onVis);
W.addEventListener('online', wake);
W.addEventListener('pageshow', function (e) { if (e.persisted) wake(); });
var tick = now();
setInterval(function () { var t = now(); if (t - tick > 30000) wake(); tick = t; }, 5000);

function fit() {
	var h;
	ta.style.height = 'auto';
	h = ta.scrollHeight + 4;
	ta.style.height = Math.max(48, h) + 'px';
	h = form.offsetHeight;
	D.body.style.paddingBottom = (h + 8) + 'px';
	newer.style.bottom = (h + 12) + 'px';
	if (follow) toBottom();
}
function update() {
	var v = ta.value, n = v.length;
	sendBtn.disabled = !/\S/.test(v) || n > MAX;
	count.textContent = n >= WARN ? n + ' / ' + MAX : '';
	count.className = n >= MAX ? 'count over' : 'count';
	sset('intake.draft', v ? v : null);
	fit();
}
function submit() {
	if (sendText(ta.value)) {
		ta.value = '';
		update();
		ta.focus();
	}
}
form.onsubmit = function (e) { e.preventDefault(); submit(); };
ta.onkeydown = function (e) {
	if (e.keyCode === 13 && !e.shiftKey && !e.altKey && !e.isComposing && e.keyCode !== 229) {
		e.preventDefault();
		submit();
	}
};
ta.oninput = update;
log.onclick = function (e) {
	var t = e.target, n, g, i;
	if (t.tagName === 'A') return;
	for (n = t; n && n !== log; n = n.parentNode) {
		if (n._value !== undefined && !n.disabled) {
			g = n.parentNode.getElementsByTagName('button');
			for (i = 0; i < g.length; i++) g[i].disabled = true;
			n.setAttribute('aria-pressed', 'true');
			sendText(n._value);
			return;
		}
		if (n._item && !n._item.matched) {
			if (n._item.st === 'fail') retryFailed(); else if (n._item.st === 'bad') editBack(n._item);
			return;
		}
	}
};
newer.onclick = function () { toBottom(); };
W.addEventListener('scroll', function () { follow = atBottom(); if (follow) show(newer); });
W.addEventListener('resize', function () { if (follow) toBottom(); });

(function init() {
	var w, saved, i, d;
	D.documentElement.lang = LANG;
	D.title = T.title;
	$('title').textContent = T.title;
	$('intro').textContent = T.intro;
	$('textlabel').textContent = T.ph;
	ta.placeholder = T.ph;
	sendBtn.textContent = T.send;
	newer.textContent = T.newer + ' \u2193';
	log.setAttribute('aria-label', T.title);
	show(form, true);
	w = buildMsg(true, T.hi, null);
	w.removeChild(w._time.parentNode);
	log.appendChild(w);
	try { saved = JSON.parse(sget('intake.outbox') || '[]'); } catch (e) { saved = []; }
	for (i = 0; saved && i < saved.length; i++) {
		if (saved[i] && typeof saved[i].x === 'string' && saved[i].x && typeof saved[i].i === 'string') {
			addItem(saved[i].x, saved[i].i, +saved[i].t || now(), !!saved[i].b);
		}
	}
	d = sget('intake.draft');
	if (d) ta.value = d;
	update();
	if (session) {
		startPoll();
		setTimeout(function () { if (!ready) { ready = true; kick(); } }, 8000);
	}
	kick();
	toBottom();
}());
}());
