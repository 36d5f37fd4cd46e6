// Line icons on a 24×24 grid, drawn with strokes in the current text color.
// Built with DOM APIs (no markup strings), decorative (aria-hidden): every
// button that shows one also has a text label or an aria-label.

const SVG = 'http://www.w3.org/2000/svg';

// Each icon is a list of shapes: a string is a path, an object a circle/rect.
const ICONS = {
  chat: ['M4 5h16v11H9l-5 4z', 'M8 9.5h8', 'M8 12.5h5'],
  menu: ['M4 6h16', 'M4 12h16', 'M4 18h16'],
  hash: ['M9.5 4 8 20', 'M16 4l-1.5 16', 'M4.5 9h15', 'M3.5 15h15'],
  lock: [{ rect: [5, 11, 14, 9, 2] }, 'M8 11V8a4 4 0 0 1 8 0v3'],
  plus: ['M12 5v14', 'M5 12h14'],
  users: [{ circle: [9, 8, 3.5] }, 'M2.5 19.5c.8-3.6 3.3-5.5 6.5-5.5s5.7 1.9 6.5 5.5', { circle: [17, 9, 2.5] }, 'M17 14c2.3 0 4 1.4 4.6 4.2'],
  userPlus: [{ circle: [10, 8, 3.5] }, 'M3.5 19.5c.8-3.6 3.3-5.5 6.5-5.5 2 0 3.8.8 5 2.3', 'M19 13v6', 'M16 16h6'],
  clip: ['M20 11.5l-8.2 8.2a5 5 0 0 1-7-7L13 4.5a3.3 3.3 0 0 1 4.7 4.7l-8.3 8.3a1.7 1.7 0 0 1-2.4-2.4l7.6-7.6'],
  smile: [{ circle: [12, 12, 9] }, 'M8.5 14.5a4.5 4.5 0 0 0 7 0', 'M9 9.5h.01', 'M15 9.5h.01'],
  send: ['M4 12 20 4l-6 16-3-7z', 'M11 13l9-9'],
  bell: ['M6 16v-5a6 6 0 0 1 12 0v5l2 2H4z', 'M10 20.5a2 2 0 0 0 4 0'],
  logout: ['M14 4h5v16h-5', 'M10 8l-4 4 4 4', 'M6 12h10'],
  close: ['M6 6l12 12', 'M18 6 6 18'],
  retry: ['M4 12a8 8 0 1 0 2.3-5.7', 'M4 4v4h4'],
  at: [{ circle: [12, 12, 4] }, 'M16 12v1.5a2.5 2.5 0 0 0 5 0V12a9 9 0 1 0-3.5 7.1'],
};

/** icon returns the named icon as an <svg> element. */
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const shape of ICONS[name] || []) {
    let el;
    if (typeof shape === 'string') {
      el = document.createElementNS(SVG, 'path');
      el.setAttribute('d', shape);
    } else if (shape.circle) {
      el = document.createElementNS(SVG, 'circle');
      const [cx, cy, r] = shape.circle;
      Object.entries({ cx, cy, r }).forEach(([k, v]) => el.setAttribute(k, v));
    } else {
      el = document.createElementNS(SVG, 'rect');
      const [x, y, width, height, rx] = shape.rect;
      Object.entries({ x, y, width, height, rx }).forEach(([k, v]) => el.setAttribute(k, v));
    }
    svg.append(el);
  }
  return svg;
}

/** fillIcons replaces every <span data-icon="name"> in root with its icon. */
export function fillIcons(root = document) {
  for (const el of root.querySelectorAll('[data-icon]')) {
    el.replaceWith(icon(el.dataset.icon));
  }
}
