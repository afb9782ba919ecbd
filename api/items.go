package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/ginmw"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// maxOffset bounds ?offset=: a deep OFFSET makes PostgreSQL read and drop
// every skipped row, so an unbounded one is a cheap way to burn the
// database (OWASP API4).
const maxOffset = 1_000_000

func tenantOf(c *gin.Context) tenancy.Resolved {
	t, _ := ginmw.Tenant(c)
	return t
}

// itemID reads the id path segment. Only the canonical spelling is an id:
// strconv would also take "+1" and "01", so one item would have many
// URLs, and a cache or audit log keyed by path would not see them as one.
func itemID(c *gin.Context) (int64, error) {
	raw := c.Param("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != raw {
		return 0, invalid("the item id must be a positive integer")
	}
	return id, nil
}

// itemInput reads an item from a JSON body or, as the service tenantry
// replaces did, from the query string (?name=&description=) when there is
// no body. A body that
// starts with '{' is JSON whatever its Content-Type says (curl -d sends JSON
// labelled as a form); a form body is read as a form.
func itemInput(c *gin.Context) (models.ItemInput, error) {
	var in models.ItemInput
	body, err := readBody(c)
	if err != nil {
		return in, err
	}
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		in.Name, in.Description = c.Query("name"), c.Query("description")
	case trimmed[0] == '{':
		if err := decodeJSON(trimmed, &in); err != nil {
			return in, err
		}
	case c.ContentType() == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(trimmed))
		if err != nil {
			return in, invalid("the form body is malformed")
		}
		in.Name, in.Description = form.Get("name"), form.Get("description")
	default:
		return in, invalid("send a JSON object (or the name and description query parameters)")
	}
	return in, in.Validate()
}

func (s *Server) handleItemList(c *gin.Context) error {
	limit, err := intQuery(c, "limit", models.DefaultPageSize, models.MaxPageSize)
	if err != nil {
		return err
	}
	offset, err := intQuery(c, "offset", 0, maxOffset)
	if err != nil {
		return err
	}
	after, keyset, err := afterQuery(c)
	if err != nil {
		return err
	}
	if keyset && offset > 0 {
		return invalid("use either after or offset, not both")
	}
	var items []models.Item
	err = s.readTx(c, func(tx *gorm.DB) error {
		if keyset {
			items, err = models.ListItemsAfter(tx, limit, after)
		} else {
			items, err = models.ListItems(tx, limit, offset)
		}
		return err
	})
	if err != nil {
		return err
	}
	return writeItems(c, http.StatusOK, items)
}

// afterQuery reads ?after=<id>, the last id of the previous page; it
// reports whether the parameter was given.
func afterQuery(c *gin.Context) (int64, bool, error) {
	vs, ok := c.GetQueryArray("after")
	if !ok || len(vs) == 1 && vs[0] == "" {
		return 0, false, nil
	}
	if len(vs) > 1 {
		return 0, false, invalid("after may be given only once")
	}
	// Canonical decimal only, like limit and offset: "+5" and "05" are
	// refused rather than read as 5.
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != vs[0] {
		return 0, false, invalid("after must be an item id, an integer from 0 to 9223372036854775807")
	}
	return n, true, nil
}

func (s *Server) handleItemCreate(c *gin.Context) error {
	in, err := itemInput(c)
	if err != nil {
		return err
	}
	var it models.Item
	err = s.withTx(c, func(tx *gorm.DB) error {
		if err := s.quota.check(tx, true); err != nil {
			return err
		}
		it, err = models.CreateItem(tx, in)
		return err
	})
	if err != nil {
		return err
	}
	c.Header("Location", "/items/"+strconv.FormatInt(it.ID, 10))
	return writeItem(c, http.StatusCreated, it)
}

func (s *Server) handleItemGet(c *gin.Context) error {
	id, err := itemID(c)
	if err != nil {
		return err
	}
	var it models.Item
	err = s.readTx(c, func(tx *gorm.DB) error {
		it, err = models.GetItem(tx, id)
		return err
	})
	if err != nil {
		return itemErr(err, id)
	}
	return writeItem(c, http.StatusOK, it)
}

func (s *Server) handleItemUpdate(c *gin.Context) error {
	id, err := itemID(c)
	if err != nil {
		return err
	}
	in, err := itemInput(c)
	if err != nil {
		return err
	}
	var it models.Item
	err = s.withTx(c, func(tx *gorm.DB) error {
		if err := s.quota.check(tx, false); err != nil {
			return err
		}
		it, err = models.UpdateItem(tx, id, in)
		return err
	})
	if err != nil {
		return itemErr(err, id)
	}
	return writeItem(c, http.StatusOK, it)
}

func (s *Server) handleItemDelete(c *gin.Context) error {
	id, err := itemID(c)
	if err != nil {
		return err
	}
	err = s.withTx(c, func(tx *gorm.DB) error {
		return models.DeleteItem(tx, id)
	})
	if err != nil {
		return itemErr(err, id)
	}
	c.Status(http.StatusNoContent)
	return nil
}

func itemErr(err error, id int64) error {
	if errors.Is(err, models.ErrNotFound) {
		return notFound("item " + strconv.FormatInt(id, 10) + " does not exist")
	}
	return err
}
