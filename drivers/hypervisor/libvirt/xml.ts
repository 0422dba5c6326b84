/**
 * A small, strict XML reader and writer for libvirt documents (domain, backup, snapshot XML).
 * libvirt emits plain XML (elements, attributes, text, comments, an optional declaration); this
 * reads all of it without an external dependency, and serializes a tree back with every attribute
 * and text value escaped, so values from users (paths, names) can never change the structure.
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';

/** An XML element. */
export interface XmlElement {
  /** Tag name. */
  name: string;
  /** Attributes in document order. */
  attributes: Record<string, string>;
  /** Child elements and text nodes in document order. */
  children: XmlNode[];
}

/** A child of an element: an element or a text node. */
export type XmlNode = XmlElement | string;

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, entity: string) => {
    if (entity.startsWith('#x')) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(Number.parseInt(entity.slice(1), 10));
    const named = ENTITIES[entity];
    if (named === undefined) throw xmlError(`unknown entity ${whole}`);
    return named;
  });
}

function xmlError(message: string): InstanceImagesError {
  return new InstanceImagesError('COMMAND_FAILED', `Could not parse libvirt XML: ${message}`);
}

/** Parses an XML document and returns its root element. @throws COMMAND_FAILED on malformed XML. */
export function parseXml(text: string): XmlElement {
  let pos = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const nameRe = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
  const attrRe = /\s*([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*("([^"]*)"|'([^']*)')/y;

  while (pos < text.length) {
    const lt = text.indexOf('<', pos);
    const chunk = lt === -1 ? text.slice(pos) : text.slice(pos, lt);
    if (chunk.length > 0) {
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(decodeEntities(chunk));
      else if (chunk.trim() !== '') throw xmlError('text outside the root element');
    }
    if (lt === -1) break;
    pos = lt;
    if (text.startsWith('<!--', pos)) {
      const end = text.indexOf('-->', pos + 4);
      if (end === -1) throw xmlError('unterminated comment');
      pos = end + 3;
    } else if (text.startsWith('<?', pos)) {
      const end = text.indexOf('?>', pos + 2);
      if (end === -1) throw xmlError('unterminated processing instruction');
      pos = end + 2;
    } else if (text.startsWith('<![CDATA[', pos)) {
      const end = text.indexOf(']]>', pos + 9);
      if (end === -1) throw xmlError('unterminated CDATA section');
      stack[stack.length - 1]?.children.push(text.slice(pos + 9, end));
      pos = end + 3;
    } else if (text.startsWith('<!', pos)) {
      const end = text.indexOf('>', pos + 2);
      if (end === -1) throw xmlError('unterminated declaration');
      pos = end + 1;
    } else if (text.startsWith('</', pos)) {
      nameRe.lastIndex = pos + 2;
      const match = nameRe.exec(text);
      if (!match) throw xmlError(`bad closing tag at offset ${pos}`);
      const open = stack.pop();
      if (!open || open.name !== match[0]) throw xmlError(`mismatched closing tag </${match[0]}> at offset ${pos}`);
      const end = text.indexOf('>', nameRe.lastIndex);
      if (end === -1 || text.slice(nameRe.lastIndex, end).trim() !== '') throw xmlError(`bad closing tag at offset ${pos}`);
      pos = end + 1;
      if (stack.length === 0) root = open;
    } else {
      nameRe.lastIndex = pos + 1;
      const match = nameRe.exec(text);
      if (!match) throw xmlError(`bad tag at offset ${pos}`);
      const element: XmlElement = { name: match[0], attributes: {}, children: [] };
      pos = nameRe.lastIndex;
      for (;;) {
        attrRe.lastIndex = pos;
        const attr = attrRe.exec(text);
        if (!attr) break;
        const [, key, , dq, sq] = attr;
        element.attributes[key as string] = decodeEntities(dq ?? sq ?? '');
        pos = attrRe.lastIndex;
      }
      const rest = /\s*(\/?)>/y;
      rest.lastIndex = pos;
      const close = rest.exec(text);
      if (!close) throw xmlError(`bad tag <${element.name}> at offset ${pos}`);
      pos = rest.lastIndex;
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else if (root) throw xmlError('more than one root element');
      if (close[1] === '/') {
        if (!parent) root = element;
      } else stack.push(element);
    }
  }
  if (stack.length > 0) throw xmlError(`unclosed element <${stack[stack.length - 1]?.name}>`);
  if (!root) throw xmlError('no root element');
  return root;
}

/** Escapes text for an attribute value or text node. */
export function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`);
}

/** Serializes an element (attributes and text escaped). */
export function serializeXml(element: XmlElement): string {
  const attrs = Object.entries(element.attributes)
    .map(([k, v]) => ` ${k}="${escapeXml(v)}"`)
    .join('');
  if (element.children.length === 0) return `<${element.name}${attrs}/>`;
  const inner = element.children.map((c) => (typeof c === 'string' ? escapeXml(c) : serializeXml(c))).join('');
  return `<${element.name}${attrs}>${inner}</${element.name}>`;
}

/** Creates an element. */
export function el(name: string, attributes: Record<string, string | undefined> = {}, children: XmlNode[] = []): XmlElement {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) attrs[k] = v;
  return { name, attributes: attrs, children };
}

/** The child elements of `element`, optionally only those named `name`. */
export function childElements(element: XmlElement, name?: string): XmlElement[] {
  return element.children.filter((c): c is XmlElement => typeof c !== 'string' && (name === undefined || c.name === name));
}

/** The first child element named `name`, or undefined. */
export function child(element: XmlElement, name: string): XmlElement | undefined {
  return childElements(element, name)[0];
}

/** Follows a path of child names (`['devices', 'disk']` → the first match at each step). */
export function descend(element: XmlElement, path: readonly string[]): XmlElement | undefined {
  let current: XmlElement | undefined = element;
  for (const name of path) {
    if (!current) return undefined;
    current = child(current, name);
  }
  return current;
}

/** The concatenated text content of an element. */
export function textOf(element: XmlElement): string {
  return element.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('');
}

/** Removes the child elements named `name`; returns how many were removed. */
export function removeChildren(element: XmlElement, name: string): number {
  const before = element.children.length;
  element.children = element.children.filter((c) => typeof c === 'string' || c.name !== name);
  return before - element.children.length;
}
